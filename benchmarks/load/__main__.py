"""Command line: ``python -m benchmarks.load [--clients N] [--duration S] [--only new,old]
[--delay-ms MS] [--out PATH]``.

Starts SeaweedFS and the counting proxy, then, one after the other (so they do not compete for
the CPU), a Jupyter Server with the new package and one with s3contents 0.13, each on a bucket
of its own; ``--clients`` simulated users work on each for ``--duration`` seconds; then every
file is checked through the REST API and straight in the bucket.  Prints the tables, writes
them under the ``## Load`` heading of ``--out`` (the rest of that file is left as it is) and
exits non-zero if the new package answered an error or lost, corrupted or added a file.
Every process it starts is stopped by its PID on the way out, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.support.proxy import StorageProxy

from .. import servers, storage, target_list
from ..large import RssSampler, cpu_seconds, hwm, reset_hwm, tree_rss
from . import report, verify
from .clients import PREFIX, ROOT, Client, Registry, Start, seed_objects
from .report import SAMPLE_EVERY, Outcome

TARGETS = ("new", "old")


_targets = target_list(TARGETS)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument(
        "--only",
        type=_targets,
        default=list(TARGETS),
        metavar="TARGETS",
        help="comma-separated packages to load, of: new, old (default: both)",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="delay the proxy adds to every storage request (default: 0)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the clients' choices")
    parser.add_argument(
        "--out",
        type=Path,
        default=servers.REPO / "docs" / "reliability.md",
        help="file whose '## Load' section receives the report (default: docs/reliability.md)",
    )
    parser.add_argument("--old-python", help="Python >= 3.12 to create the old package's venv")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients and --duration must be positive")
    return args


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _packages(targets: list[str], old_python: str | None) -> list[servers.Package]:
    out = []
    for name in targets:
        pkg = servers.new_package() if name == "new" else servers.old_package(old_python)
        pkg = dataclasses.replace(pkg, bucket=f"load-{name}")
        why = servers.check_importable(pkg)
        if why:
            print(f"{name}: the contents manager does not import ({why})", file=sys.stderr)
            raise SystemExit(2)
        out.append(pkg)
    return out


def _tracebacks(log: Path, offset: int) -> int:
    with contextlib.suppress(OSError), open(log, "rb") as f:
        f.seek(offset)
        return f.read().count(b"Traceback (most recent call last)")
    return 0


def load(
    pkg: servers.Package,
    args: argparse.Namespace,
    proxy: StorageProxy,
    direct: storage.S3Direct,
    scratch: Path,
    logs: Path,
) -> Outcome:
    """Seed ``pkg``'s bucket, start its server, run the clients, check every file."""
    outcome = Outcome(pkg.name, pkg.facts(), args.clients, args.duration)
    print(f"{pkg.name}: s3contents {outcome.facts.get('s3contents', '?')}, seeding ...")
    objects, files, shared = seed_objects(args.clients)
    direct.create_bucket(pkg.bucket)
    direct.put_many(pkg.bucket, {f"{PREFIX}/{path}": data for path, data in objects.items()})
    log_path = logs / f"jupyter-load-{pkg.name}.log"
    jupyter = servers.start_jupyter(pkg, proxy.url, PREFIX, scratch / pkg.name, log_path)
    outcome.log = str(log_path.relative_to(servers.REPO))
    try:
        pid = jupyter.proc.pid
        # Warm up (not measured): the first requests build the storage client.
        warm = requests.Session()
        warm.trust_env = False
        warm.headers["Authorization"] = f"token {jupyter.token}"
        for path in (ROOT, next(iter(shared))):
            warm.get(f"{jupyter.url}/api/contents/{path}", params={"content": "1"}, timeout=60)
        warm.close()
        log_offset = log_path.stat().st_size
        registry = Registry(files)
        start = Start()
        clients = [
            Client(i, jupyter.url, jupyter.token, files[i], shared, registry, start, args.seed)
            for i in range(args.clients)
        ]
        for client in clients:
            client.start()
        proxy.wait_idle()
        proxy.reset()
        outcome.rss_start = tree_rss(pid)
        reset_hwm(pid)
        cpu = cpu_seconds(pid)
        own_cpu = time.process_time()
        print(f"{pkg.name}: {args.clients} clients for {args.duration:g} s ...")
        try:
            with RssSampler(pid, SAMPLE_EVERY) as sampler:
                began = time.monotonic()
                start.deadline = began + args.duration
                start.go.set()
                for client in clients:
                    while client.is_alive():
                        client.join(1.0)
                outcome.elapsed = time.monotonic() - began
        finally:
            start.stop.set()
        outcome.rss_peak = sampler.peak
        outcome.hwm = hwm(pid)
        outcome.cpu = cpu_seconds(pid) - cpu
        outcome.harness_cpu = time.process_time() - own_cpu
        proxy.wait_idle()
        outcome.counts, outcome.statuses = proxy.snapshot()
        outcome.tracebacks = _tracebacks(log_path, log_offset)
        for client in clients:
            for op, stats in client.stats.items():
                outcome.stats[op].merge(stats)
            outcome.errors.merge(client.errors)
            outcome.wrong.merge(client.wrong)
            if client.failure:
                outcome.harness.append(f"{client.name}: {client.failure}")
        counts = [sum(s.count for s in c.stats.values()) for c in clients]
        outcome.per_client = (min(counts), max(counts))
        print(
            f"{pkg.name}: {outcome.requests} requests, {outcome.error_count} errors, "
            f"{outcome.wrong_count} wrong answers; checking every file ..."
        )
        owned = [f for c in clients for f in c.files]
        failed = registry.failed_creates
        outcome.rest = verify.via_rest(
            jupyter.url, jupyter.token, owned, shared, failed, args.clients
        )
        outcome.bucket = verify.via_bucket(
            direct.client, pkg.bucket, owned, shared, failed, args.clients
        )
    finally:
        jupyter.stop()
    return outcome


def _machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores" + (f" ({cpu})" if cpu else "")


def _weed_version() -> str:
    import subprocess

    out = subprocess.run([storage.find_weed(), "version"], capture_output=True, text=True).stdout
    found = re.search(r"\b\d+\.\d+(?:\.\d+)?\b", out)
    return found.group(0) if found else "?"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    packages = _packages(args.only, args.old_python)
    scratch = Path(tempfile.mkdtemp(prefix="s3contents-load-"))
    logs = servers.WORK / "logs"
    outcomes: list[Outcome] = []
    loads: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            weed = storage.start_storage(scratch / "weed", logs / "seaweedfs-load.log")
            stack.callback(weed.stop)
            proxy = StorageProxy(
                f"http://127.0.0.1:{weed.port}", delay_ms=args.delay_ms, record=False
            ).start()
            stack.callback(proxy.stop)
            storage.s3_client(proxy.url).list_buckets()
            print(f"SeaweedFS on {weed.endpoint}, counting proxy on {proxy.url}")
            direct = storage.S3Direct(weed.endpoint)
            for pkg in packages:
                before = os.getloadavg()[0]
                outcomes.append(load(pkg, args, proxy, direct, scratch, logs))
                loads.append(f"{pkg.name} {before:.1f} → {os.getloadavg()[0]:.1f}")
    except (KeyboardInterrupt, SystemExit):
        print("interrupted: stopping the servers", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    words = [".venv/bin/python -m benchmarks.load", *(argv if argv is not None else sys.argv[1:])]
    command = " ".join(words)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{_machine()}, SeaweedFS {_weed_version()}; 1-minute load average before → after "
        f"each run: {', '.join(loads)}"
    )
    print("\n" + report.summary_table(outcomes))
    print("\n" + report.ops_table(outcomes))
    found = report.problems(outcomes)
    if found:
        print("\n" + found)
    body = report.section(outcomes, command, date, machine, args.delay_ms)
    report.replace_section(args.out, body)
    print(f"\nwrote the '{report.HEADING}' section of {args.out}; server logs in {logs}")
    new = [o for o in outcomes if o.name == "new"]
    if new and not new[0].passed:
        print("new: FAILED (errors, wrong answers or damaged files: see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
