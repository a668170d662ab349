"""Google Cloud Storage support: ``from s3contents.gcs import GCSContentsManager``.

Needs the ``gcs`` extra (``pip install s3contents[gcs]``, which brings ``gcsfs``); without
it, importing either name raises an ImportError that says so.

The provider package, laid out as every provider is (see "Adding a storage provider" in
``docs/architecture.md``): :mod:`.client` speaks the JSON API (credentials, endpoint and
session from gcsfs, retries), :mod:`.storage` is the adapter of the storage port on it
(storage layer, no Jupyter), :mod:`.manager` the contents manager that declares the
settings and builds the adapter (API layer). The names below are imported on first use, so
importing the adapter alone does not import Jupyter Server through this package.

Importing the adapter (through :mod:`.client`, where every GCS module gets gcsfs) imports
gcsfs with ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` unless that variable is already set:
recent gcsfs otherwise swaps in a file system class that asks, over gRPC, what kind of bucket it
talks to, which stalls for about a minute against emulators and private endpoints. The
variable is removed again once gcsfs is imported, so kernels and terminals started by the
server do not inherit it. To keep gcsfs's experimental features for other code in the
server process, set ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=true`` before starting Jupyter. The
contents manager never uses them either way: it speaks the JSON API through gcsfs's core
class.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import GCSContentsManager
    from .storage import GCSStorage

__all__ = ["GCSContentsManager", "GCSStorage"]

#: Exported name -> the submodule that defines it.
_EXPORTS = {"GCSContentsManager": ".manager", "GCSStorage": ".storage"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
