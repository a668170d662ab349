"""Helpers of the hybrid manager's tests: the server's configuration, and a view of what
each mount really stores (:class:`Stores`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets.config import Config

from s3contents.hybrid import HybridContentsManager

#: Mount name -> (manager class, its keyword arguments).
Layout = dict[str, tuple[type, dict[str, Any]]]


def hybrid_config(layout: Layout, **settings: Any) -> Config:
    """Server configuration of a hybrid manager on ``layout`` (``settings``: more of its own)."""
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": HybridContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            "HybridContentsManager": {
                "manager_classes": {m: cls for m, (cls, _) in layout.items()},
                "manager_kwargs": {m: dict(kw) for m, (_, kw) in layout.items()},
                **settings,
            },
        }
    )


class Stores:
    """What each mount really holds: local files on disk, objects through boto3."""

    def __init__(self, cm: HybridContentsManager, s3: Any, local_root: Path) -> None:
        self.cm = cm
        self.s3 = s3
        self.local_root = local_root

    def _object(self, mount: str, rel: str) -> tuple[str, str]:
        sub = self.cm.managers[mount]
        return sub.bucket, f"{sub.prefix}/{rel}" if sub.prefix else rel

    def read(self, full_path: str) -> bytes | None:
        """Bytes stored for the API path ``full_path``, or None when there are none."""
        mount, _, rel = self.cm.mount_of(full_path)
        if not mount:
            path = self.local_root / rel
            return path.read_bytes() if path.is_file() else None
        bucket, key = self._object(mount, rel)
        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None

    def write(self, full_path: str, data: bytes) -> None:
        """Store bytes behind the manager's back (a local file, or an object)."""
        mount, _, rel = self.cm.mount_of(full_path)
        if not mount:
            path = self.local_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        bucket, key = self._object(mount, rel)
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def names(self, mount: str) -> set[str]:
        """Every file path stored under a mount (keys relative to its prefix; local paths)."""
        if not mount:
            return {
                p.relative_to(self.local_root).as_posix()
                for p in self.local_root.rglob("*")
                if p.is_file()
            }
        sub = self.cm.managers[mount]
        prefix = f"{sub.prefix}/" if sub.prefix else ""
        found: set[str] = set()
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=sub.bucket, Prefix=prefix)
        for page in pages:
            found.update(item["Key"][len(prefix) :] for item in page.get("Contents", []))
        return found
