"""Google Cloud Storage support: ``from s3contents.gcs import GCSContentsManager``.

Needs the ``gcs`` extra (``pip install s3contents[gcs]``, which brings ``gcsfs``).

Importing this package (or :mod:`s3contents.storage.gcs`) imports gcsfs with
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` unless that variable is already set: recent
gcsfs otherwise swaps in a file system class that asks, over gRPC, what kind of bucket it
talks to, which stalls for about a minute against emulators and private endpoints. The
variable is removed again once gcsfs is imported, so kernels and terminals started by the
server do not inherit it. To keep gcsfs's experimental features for other code in the
server process, set ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=true`` before starting Jupyter. The
contents manager never uses them either way: it speaks the JSON API through gcsfs's core
class.
"""

from __future__ import annotations

from ..storage.gcs import GCSStorage
from .gcsmanager import GCSContentsManager

__all__ = ["GCSContentsManager", "GCSStorage"]
