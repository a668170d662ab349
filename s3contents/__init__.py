"""s3contents: Jupyter notebooks, files and folders stored in S3 and Google Cloud Storage.

``from s3contents import S3ContentsManager``, then in a Jupyter config::

    c.ServerApp.contents_manager_class = S3ContentsManager
    c.S3ContentsManager.bucket = "my-bucket"
"""

from __future__ import annotations

from . import redact as _redact
from .s3manager import S3ContentsManager

# Before any configuration is loaded: traitlets logs it whole at DEBUG (see redact.py).
_redact.install()

__version__ = "1.0.0.dev0"

__all__ = ["S3ContentsManager", "__version__"]
