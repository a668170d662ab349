"""CPU the S3 adapter spends on the event loop: a listing's parsing, and the first request.

Starts SeaweedFS on loopback (``tests/support/servers.py``), writes 1000 objects and 50 sub-folders
under one prefix, then, in fresh processes (one per source tree given, so two checkouts can
be compared on one server):

* **listing**: ``S3Storage.list`` of that prefix (one ListObjectsV2 of 1050 entries), CPU
  seconds of the process (``time.process_time()``), median of 10 after one warm-up;
* **folder listing**: the listing the manager makes of that folder (``Folders``: with
  subfolder dates, one recursive ListObjectsV2 of 1050 keys), the same way;
* **first request**: the first ``S3Storage.head`` of a new adapter (the client is created
  then), CPU seconds of the loop's thread (``time.thread_time()``: work moved to another
  thread does not count) and the longest stall of the loop (a task that wakes every 1 ms
  records its longest wait), median over 5 processes.

Run from the repository root::

    python -m benchmarks.s3_cpu                 # this tree
    python -m benchmarks.s3_cpu --tree OLD .    # another checkout, then this one
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OBJECTS, FOLDERS, ROUNDS, PROCESSES = 1000, 50, 10, 5


async def _heartbeat(longest: list[float]) -> None:
    last = time.perf_counter()
    while True:
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest[0] = max(longest[0], now - last)
        last = now


async def _measure(config: dict[str, Any]) -> dict[str, float]:
    from s3contents.s3.storage import S3Storage

    def storage() -> Any:
        return S3Storage(config["bucket"], client_kwargs=config["client_kwargs"])

    first = storage()
    longest = [0.0]
    beat = asyncio.ensure_future(_heartbeat(longest))
    await asyncio.sleep(0.01)
    longest[0] = 0.0
    cpu = time.thread_time()
    await first.head(config["prefix"] + "o0000")
    first_cpu = time.thread_time() - cpu
    beat.cancel()
    listing = storage()
    await listing.list(config["prefix"])  # warm-up: client made, caches filled
    times = []
    for _ in range(ROUNDS):
        cpu = time.process_time()
        found = await listing.list(config["prefix"])
        times.append(time.process_time() - cpu)
    assert len(found.objects) == OBJECTS and len(found.prefixes) == FOLDERS
    folder_times = await _folder_listing(listing, config["prefix"])
    await first.close()
    await listing.close()
    return {
        "list_cpu_ms": statistics.median(times) * 1000,
        "folder_listing_cpu_ms": statistics.median(folder_times) * 1000,
        "first_request_loop_cpu_ms": first_cpu * 1000,
        "first_request_longest_stall_ms": longest[0] * 1000,
    }


async def _folder_listing(storage: Any, prefix: str) -> list[float]:
    """CPU of the listing the manager makes of that folder (its files and subfolders, dated
    where the tree has it: ``Folders.dated_listing``; ``Folders.listing`` in a tree
    without it)."""
    from s3contents.folders import Folders
    from s3contents.paths import KeyMapper

    folders = Folders(storage, KeyMapper(prefix.rstrip("/")), owner="bench")
    dated = getattr(folders, "dated_listing", None)

    async def once() -> Any:
        return await (dated("") if dated is not None else folders.listing(""))

    await once()
    times = []
    for _ in range(ROUNDS):
        cpu = time.process_time()
        found = await once()
        times.append(time.process_time() - cpu)
    assert len(found.files) == OBJECTS and len(found.dirs) == FOLDERS
    return times


def _child(tree: str, config: dict[str, Any]) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=tree)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def seed_folder(server: Any, prefix: str = "bench/") -> tuple[str, str]:
    """A new bucket of ``server`` with :data:`OBJECTS` objects ``<prefix>oNNNN`` and
    :data:`FOLDERS` sub-folders ``<prefix>fNN/`` of one object each; returns (bucket,
    prefix)."""
    bucket = server.make_bucket()
    client = server.client()
    keys = [f"{prefix}o{i:04d}" for i in range(OBJECTS)]
    keys += [f"{prefix}f{i:02d}/x" for i in range(FOLDERS)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    return bucket, prefix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", nargs="*", default=[str(ROOT)], help="source trees")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_measure(json.loads(args.child)))))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import start_seaweedfs

    with start_seaweedfs() as server:
        bucket, prefix = seed_folder(server)
        config = {
            "bucket": bucket,
            "prefix": prefix,
            "client_kwargs": {
                "endpoint_url": server.endpoint_url,
                "region_name": server.region_name,
                "aws_access_key_id": server.access_key_id,
                "aws_secret_access_key": server.secret_access_key,
            },
        }
        for tree in args.tree:
            runs = [_child(str(Path(tree).resolve()), config) for _ in range(PROCESSES)]
            summary = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
            print(json.dumps({"tree": tree, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
