"""Command line: ``python -m benchmarks [--delay-ms MS] [--only new|old] [--repeat N] [--out P]``.

Starts SeaweedFS, the counting proxy and one Jupyter Server per package (one after the other,
so they do not compete for the CPU), runs the workload, prints the table and writes the report.
Every process it starts is stopped by its PID on the way out, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import report, servers, storage
from .proxy import ProxyThread
from .workload import Workload, seed

PREFIX = "notebooks"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=20.0,
        help="delay the proxy adds to every S3 request, standing for a cloud round trip "
        "(default: 20)",
    )
    parser.add_argument("--only", choices=["new", "old"], help="benchmark one package only")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per operation")
    parser.add_argument(
        "--out",
        type=Path,
        default=servers.REPO / "docs" / "benchmarks.md",
        help="report to write (default: docs/benchmarks.md)",
    )
    parser.add_argument("--old-python", help="Python >= 3.12 to create the old package's venv")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _machine(weed: str, helper: str) -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    mem = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    out = subprocess.run([weed, "version"], capture_output=True, text=True).stdout
    # "version 8000GB 4.48 pypi linux amd64": the release is the dotted number.
    found = re.search(r"\b\d+\.\d+(?:\.\d+)?\b", out)
    version = found.group(0) if found else "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{os.cpu_count()} cores, {cpu}",
        "memory": mem or "unknown",
        "OS": platform.platform(),
        # Other work on the machine skews the timings (not the request counts).
        "load average (1/5/15 min) at the end": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "harness Python": platform.python_version(),
        "storage": f"SeaweedFS `weed mini` {version} on local disk, started by `{helper}`",
    }


def _sigterm(signum, frame):
    # Turn SIGTERM into an exception so the cleanup in main() runs.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    names = [args.only] if args.only else ["new", "old"]
    packages = []
    for name in names:
        if name == "new":
            pkg = servers.new_package()
            why = servers.check_importable(pkg)
            if why:
                print(f"new package does not import ({why}); try --only old", file=sys.stderr)
                return 2
        else:
            pkg = servers.old_package(args.old_python)
        packages.append(pkg)

    logs = servers.WORK / "logs"
    scratch = Path(tempfile.mkdtemp(prefix="s3contents-bench-"))
    weed = proxy = jupyter = None
    results = {}
    facts = {}
    try:
        weed = storage.start_storage(scratch / "weed", logs / "seaweedfs.log")
        proxy = ProxyThread("127.0.0.1", weed.port, args.delay_ms).start()
        direct = storage.s3_client(weed.endpoint)
        # Signatures cover the Host header: prove they survive the proxy before measuring.
        storage.s3_client(proxy.url).list_buckets()
        print(f"SeaweedFS ({weed.helper}) on {weed.endpoint}, counting proxy on {proxy.url}")
        for pkg in packages:
            facts[pkg.name] = pkg.facts()
            print(f"seeding {pkg.bucket} ...")
            seed(direct, pkg.bucket, PREFIX, args.repeat)
            print(f"{pkg.name}: s3contents {facts[pkg.name].get('s3contents', '?')}")
            home = scratch / pkg.name
            jupyter = servers.start_jupyter(
                pkg, proxy.url, PREFIX, home, logs / f"jupyter-{pkg.name}.log"
            )
            work = Workload(
                jupyter.url, jupyter.token, proxy, direct, pkg.bucket, PREFIX, args.repeat
            )
            results[pkg.name] = work.run()
            jupyter.stop()
            jupyter = None
        machine = _machine(storage.find_weed(), weed.helper)
    except (KeyboardInterrupt, SystemExit):
        print("interrupted: stopping the servers", file=sys.stderr)
        raise
    finally:
        for thing in (jupyter, proxy, weed):
            if thing is not None:
                thing.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    command = ".venv/bin/python -m benchmarks " + " ".join(argv or sys.argv[1:])
    text = report.document(results, facts, machine, args.delay_ms, args.repeat, command.strip())
    table, notes = report.table(results)
    print()
    print(table)
    for i, note in enumerate(notes, 1):
        print(f"[{i}] {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
