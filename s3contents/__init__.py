"""s3contents: Jupyter notebooks, files and folders stored in S3 and Google Cloud Storage.

``from s3contents import S3ContentsManager``, then in a Jupyter config::

    c.ServerApp.contents_manager_class = S3ContentsManager
    c.S3ContentsManager.bucket = "my-bucket"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import redact as _redact

if TYPE_CHECKING:
    from .s3 import S3ContentsManager

# Before any configuration is loaded: traitlets logs it whole at DEBUG (see redact.py).
_redact.install()

__version__ = "1.0.0.dev0"

__all__ = ["S3ContentsManager", "__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The server extension ``s3contents`` (:mod:`s3contents.serverext`), which our managers
    enable by themselves in the server that runs them."""
    from .serverext import S3ContentsExtension

    return [{"module": "s3contents.serverext", "app": S3ContentsExtension}]


def __getattr__(name: str) -> Any:
    # S3ContentsManager is imported on first use, not with the package: the manager pulls in
    # Jupyter Server and botocore (2 s), which the `s3contents` command needs only to run a
    # server, not for --help.
    if name == "S3ContentsManager":
        from .s3 import S3ContentsManager

        return S3ContentsManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
