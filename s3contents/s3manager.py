"""Old import path of ``S3ContentsManager`` (s3contents 0.13), kept for configurations that
name it: ``c.ServerApp.contents_manager_class = "s3contents.s3manager.S3ContentsManager"``.

The manager lives in :mod:`s3contents.s3.manager` (API layer); this module only re-exports it.
"""

from __future__ import annotations

from .s3.manager import S3ContentsManager, validate_bucket

__all__ = ["S3ContentsManager", "validate_bucket"]
