"""Old import path of ``GCSContentsManager``, kept for configurations that name it:
``c.ServerApp.contents_manager_class = "s3contents.gcs.gcsmanager.GCSContentsManager"``.

The manager lives in :mod:`s3contents.gcs.manager` (API layer); this module only re-exports
it.
"""

from __future__ import annotations

from .manager import GCSContentsManager, resolve_token, validate_gcs_bucket

__all__ = ["GCSContentsManager", "resolve_token", "validate_gcs_bucket"]
