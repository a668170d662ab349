"""Amazon S3 and S3-compatible servers: ``from s3contents.s3 import S3ContentsManager``.

The provider package, laid out as every provider is (see "Adding a storage provider" in
``docs/architecture.md``): :mod:`.storage` is the adapter of the storage port (storage
layer: aiobotocore, no Jupyter), :mod:`.manager` the contents manager that declares the
settings and builds the adapter (API layer). The names below are imported on first use, so
importing the adapter alone does not import Jupyter Server through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import S3ContentsManager
    from .storage import S3Storage

__all__ = ["S3ContentsManager", "S3Storage"]

#: Exported name -> the submodule that defines it.
_EXPORTS = {"S3ContentsManager": ".manager", "S3Storage": ".storage"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
