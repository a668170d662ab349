"""CPU per S3 request: aiobotocore as botocore configures it, as ``S3Storage`` configures it,
the ``S3Storage`` adapter itself (all through botocore, and with its lean path of
``s3contents.s3.wire``), and obstore (Rust ``object_store``), on one SeaweedFS.

For the design decision of issue 14 (the SDK under the S3 adapter): only measured here,
nothing in the package uses obstore. Starts SeaweedFS on loopback
(``tests/support/servers.py``), writes 1000 objects and 50 sub-folders under one prefix, then
measures for each client, in one process, the CPU seconds of the whole process
(``time.process_time()``: obstore's Rust threads count too) per request of:

* **HEAD** of an existing object,
* **PUT small**: a 2 KiB body to a new key (the client's default checksums),
* **COPY**: a server-side, create-only copy (``If-None-Match: *``) to a new key,
* **LIST**: one ListObjectsV2 (delimited) of the 1000 objects + 50 prefixes,

with ``CONCURRENCY`` requests in flight (LIST: one at a time), after a warm-up; median of
``--repeat`` rounds, the clients taking turns. On loopback a request's CPU includes the
kernel's work of the send (``socket.send`` delivers to the server on the same machine).

obstore is imported only when this runs; without it, its rows are skipped (said so). It is
not a dependency of the package, its tests or CI. Run from the repository root::

    python -m benchmarks.sdk_cpu [--repeat 3] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.s3_cpu import OBJECTS, seed_folder

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 16
SMALL = b"x" * 2048

#: What obstore lacks that the S3 adapter uses (as of obstore 0.12).
OBSTORE_GAPS = [
    "copy only while the destination is a given version (CopyObject If-Match): no",
    "copy create-only: only through the store-wide option copy_if_not_exists="
    "'header:If-None-Match:*' (every copy of the store then is create-only)",
    "copy replacing metadata (MetadataDirective REPLACE, our mtime): no",
    "delete only while a given ETag (DeleteObject If-Match, DeleteObjects with ETags): no; "
    "delete of many paths is DeleteObjects without conditions",
    "list multipart uploads / list parts of an upload: no (multipart writes only)",
    "list object versions, bucket versioning and lifecycle configuration: no",
    "custom metadata: written on put (Attributes); head answers an ObjectMeta without it "
    "(path, size, last_modified, e_tag, version), so our mtime needs a GET",
    "request counting/timing hook per request (our StorageMeter): no; only whole calls",
]

Op = Callable[[int], Awaitable[Any]]


async def _pool(op: Op, numbers: Iterator[int], concurrency: int) -> None:

    async def worker() -> None:
        for i in numbers:
            await op(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _cpu_per_request(op: Op, n: int, concurrency: int) -> float:
    await _pool(op, iter(range(n, n + 20)), concurrency)  # warm-up
    cpu = time.process_time()
    await _pool(op, iter(range(n)), concurrency)
    return (time.process_time() - cpu) / n * 1000


class _Boto:
    """A raw aiobotocore client with the given ``AioConfig`` arguments."""

    def __init__(self, server: Any, bucket: str, config: dict[str, Any]) -> None:
        self.server, self.bucket, self.config = server, bucket, config

    async def __aenter__(self) -> _Boto:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self._cm = get_session().create_client(
            "s3",
            endpoint_url=self.server.endpoint_url,
            region_name=self.server.region_name,
            aws_access_key_id=self.server.access_key_id,
            aws_secret_access_key=self.server.secret_access_key,
            config=AioConfig(**self.config),
        )
        self.c = await self._cm.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(None, None, None)

    def ops(self, prefix: str, run: str) -> dict[str, Op]:
        c, b = self.c, self.bucket
        return {
            "HEAD": lambda i: c.head_object(Bucket=b, Key=f"{prefix}o{i % OBJECTS:04d}"),
            "PUT small": lambda i: c.put_object(Bucket=b, Key=f"w/{run}/p{i}", Body=SMALL),
            "COPY": lambda i: c.copy_object(
                Bucket=b,
                Key=f"w/{run}/c{i}",
                CopySource={"Bucket": b, "Key": f"{prefix}o{i % OBJECTS:04d}"},
                IfNoneMatch="*",
            ),
            "LIST": lambda i: c.list_objects_v2(
                Bucket=b, Prefix=prefix, Delimiter="/", MaxKeys=10000
            ),
        }


class _Adapter:
    """``S3Storage``, the package's adapter (its own layers included)."""

    def __init__(
        self, server: Any, bucket: str, config: dict[str, Any] | None = None, *, lean: bool = True
    ) -> None:
        from s3contents.s3.storage import S3Storage

        self.s = S3Storage(
            bucket,
            client_kwargs={
                "endpoint_url": server.endpoint_url,
                "region_name": server.region_name,
                "aws_access_key_id": server.access_key_id,
                "aws_secret_access_key": server.secret_access_key,
            },
            config_kwargs=config,
            lean=lean,
        )

    async def __aenter__(self) -> _Adapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.s.close()

    def ops(self, prefix: str, run: str) -> dict[str, Op]:
        from s3contents.storage.base import PutMode

        s = self.s
        return {
            "HEAD": lambda i: s.head(f"{prefix}o{i % OBJECTS:04d}"),
            "PUT small": lambda i: s.put(f"w/{run}/p{i}", SMALL),
            "COPY": lambda i: s.copy(
                f"{prefix}o{i % OBJECTS:04d}", f"w/{run}/c{i}", mode=PutMode.CREATE
            ),
            "LIST": lambda i: s.list(prefix),
        }


class _Obstore:
    def __init__(self, server: Any, bucket: str) -> None:
        from obstore.store import S3Store

        self.store = S3Store(
            bucket,
            endpoint=server.endpoint_url,
            region=server.region_name,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
            virtual_hosted_style_request=False,
            copy_if_not_exists="header:If-None-Match:*",
            client_options={"allow_http": True, "pool_max_idle_per_host": str(CONCURRENCY * 2)},
        )

    async def __aenter__(self) -> _Obstore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def ops(self, prefix: str, run: str) -> dict[str, Op]:
        import obstore

        st = self.store
        return {
            "HEAD": lambda i: obstore.head_async(st, f"{prefix}o{i % OBJECTS:04d}"),
            "PUT small": lambda i: obstore.put_async(st, f"w/{run}/p{i}", SMALL),
            "COPY": lambda i: obstore.copy_async(
                st, f"{prefix}o{i % OBJECTS:04d}", f"w/{run}/c{i}", overwrite=False
            ),
            "LIST": lambda i: obstore.list_with_delimiter_async(st, prefix.rstrip("/")),
        }


def _clients(server: Any, bucket: str) -> list[tuple[str, Callable[[], Any]]]:
    from s3contents.s3.storage import S3Storage

    tuned = S3Storage(bucket)._config_kwargs
    plain = {"retries": tuned["retries"], "max_pool_connections": tuned["max_pool_connections"]}
    clients: list[tuple[str, Callable[[], Any]]] = [
        ("aiobotocore, botocore's defaults", lambda: _Boto(server, bucket, plain)),
        ("aiobotocore, as S3Storage configures it", lambda: _Boto(server, bucket, tuned)),
        ("S3Storage, every request by botocore", lambda: _Adapter(server, bucket, lean=False)),
        ("S3Storage (the adapter, lean path)", lambda: _Adapter(server, bucket)),
    ]
    try:
        import obstore  # noqa: F401
    except ImportError:
        print("obstore is not installed: its rows are skipped (pip install obstore)")
    else:
        clients.append(("obstore", lambda: _Obstore(server, bucket)))
    return clients


async def _round(
    clients: list[tuple[str, Callable[[], Any]]], prefix: str, n: int, rnd: int
) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for c, (name, make) in enumerate(clients):
        async with make() as client:
            for op, fn in client.ops(prefix, f"r{rnd}c{c}").items():
                listing = op == "LIST"
                count = max(5, n // 30) if listing else n
                out[(name, op)] = await _cpu_per_request(fn, count, 1 if listing else CONCURRENCY)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median)")
    parser.add_argument("--requests", type=int, default=300, help="requests per op and round")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import start_seaweedfs

    with start_seaweedfs() as server:
        bucket, prefix = seed_folder(server)
        clients = _clients(server, bucket)
        rounds = [
            asyncio.run(_round(clients, prefix, args.requests, r)) for r in range(args.repeat)
        ]
    ops = ["HEAD", "PUT small", "COPY", "LIST"]
    print(f"\nCPU ms per request (whole process), median of {args.repeat} rounds")
    print(f"| client | {' | '.join(ops)} |")
    print(f"|---|{'---:|' * len(ops)}")
    for name, _ in clients:
        cells = [f"{statistics.median(r[(name, op)] for r in rounds):.3f}" for op in ops]
        print(f"| {name} | {' | '.join(cells)} |")
    if any(name == "obstore" for name, _ in clients):
        print("\nWhat obstore cannot do that the S3 adapter needs:")
        for gap in OBSTORE_GAPS:
            print(f"- {gap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
