"""Async storage port and its adapters (one per provider)."""

from .base import Listing, ObjectInfo, PutMode, Storage

__all__ = ["Listing", "ObjectInfo", "PutMode", "Storage"]
