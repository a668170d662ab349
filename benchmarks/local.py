"""The ``local`` reference target: jupyter_server's ``AsyncLargeFileManager`` on a local folder.

It gets the same fixtures as the buckets, written as files (a "bucket" is a folder, a key a
path under it), and the same REST workload.  No storage requests: :class:`NoStorage` stands
for the counting proxy and counts nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MANAGER = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"


class NoStorage:
    """The counting proxy's interface, for a target that makes no storage requests."""

    def wait_idle(self, quiet: float = 0.05, timeout: float = 10.0) -> None:
        pass

    def reset(self) -> None:
        pass

    def snapshot(self) -> tuple[dict[str, int], dict[int, int]]:
        return {}, {}

    def set_delay(self, delay_ms: float) -> None:
        pass


class LocalDirect:
    """Files under ``root``: the few calls the workload makes of its direct S3 client."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create_bucket(self, bucket: str) -> None:
        (self.root / bucket).mkdir(parents=True, exist_ok=True)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        for key in objects:  # parents first, then the files in parallel
            (self.root / bucket / key).parent.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda item: (self.root / bucket / item[0]).write_bytes(item[1]),
                    objects.items(),
                )
            )

    def size(self, bucket: str, key: str) -> int:
        return (self.root / bucket / key).stat().st_size

    def keys(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket
        folder = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not folder.is_dir():
            return []
        found = (p.relative_to(base).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(prefix))
