"""Several contents managers side by side in one Jupyter tree (API layer).

:class:`HybridContentsManager` mounts contents managers on folder names of the root: the
root manager (mount ``""``) serves every path whose first name is not a mount, and each
mount serves the paths under its folder, e.g. local files at the root and a bucket under
``s3/``, or two buckets (or two prefixes of one bucket) under ``team/`` and ``me/``::

    c.ServerApp.contents_manager_class = HybridContentsManager
    c.HybridContentsManager.manager_classes = {"": LargeFileManager, "s3": S3ContentsManager}
    c.HybridContentsManager.manager_kwargs = {"": {"root_dir": "/data"}, "s3": {"bucket": "nb"}}

It is async and hosts sync managers (jupyter_server's ``FileContentsManager`` and
``LargeFileManager``, called directly as jupyter_server itself calls them: local disk) as
well as async ones (ours, ``AsyncFileContentsManager``...). Each mount keeps its own
checkpoints, hidden-file rules and events; the events reach the server's event logger once,
with full paths. Copies and renames between two mounts stream the data: files in pieces of
``cross_mount_chunk_size`` through the target's chunked-upload protocol, notebooks as models,
folders file by file; a rename deletes the source only once everything is copied.

PyPI's ``hybridcontents`` (the package the old s3contents README pointed to) is a sync
``ContentsManager`` that calls its managers without awaiting them; this package's managers
serve it with blocking calls (:mod:`s3contents.blocking`), which block the server's event loop
for each request: this manager is the async way, with the same settings.

The package, top to bottom:

- :mod:`~s3contents.hybrid.manager`: the contents API, each request sent to its mount;
- :mod:`~s3contents.hybrid.transfer`: copies and moves between two mounts;
- :mod:`~s3contents.hybrid.mounts`: what each kind of mount (a bucket of ours, a local
  folder, any other manager) does its own way, chosen once per mount.

``s3contents.hybrid.HybridContentsManager`` is the name to configure.
"""

from __future__ import annotations

from .manager import HybridCheckpoints, HybridContentsManager
from .mounts import mount_name

__all__ = ["HybridCheckpoints", "HybridContentsManager", "mount_name"]
