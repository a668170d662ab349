"""Command line: ``python -m benchmarks [--delay-ms MS] [--only TARGETS] [--repeat N]
[--budget-s S] [--skip-large] [--large-mb N] [--curves] [--aws-pages] [--chart P] [--out P]``.

Targets: ``new`` and ``old`` (this package and s3contents 0.13 on S3, against SeaweedFS),
``local`` (jupyter_server's ``AsyncLargeFileManager`` on a local folder, the reference),
``gcs`` and ``gcs-old`` (their GCS contents managers, against fake-gcs-server); all five by
default.  For each storage it starts the server and a counting proxy, then one Jupyter Server
per target (one after the other, so they do not compete for the CPU), runs the workload and
the large-file test, prints the tables and writes the report.  Every process it starts is
stopped by its PID on the way out, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import pickle
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.proxy import StorageProxy, classify_gcs

from . import chart, gcs, large, report, servers, storage, target_list
from .local import LocalDirect, NoStorage
from .pages import cap_list_pages
from .workload import LIST_NS, PAGES_NS, RENAME_NS, Counter, Curves, Workload, seed, seed_curves

PREFIX = "notebooks"
TARGETS = ("new", "old", "local", "gcs", "gcs-old")


_targets = target_list(TARGETS)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=20.0,
        help="delay the proxy adds to every storage request, standing for a cloud round trip "
        "(default: 20; the large-file test runs without)",
    )
    parser.add_argument(
        "--only",
        type=_targets,
        default=list(TARGETS),
        metavar="TARGETS",
        help="comma-separated targets to benchmark, of: new, old (S3), local, gcs, gcs-old "
        "(default: all)",
    )
    parser.add_argument(
        "--curves",
        action="store_true",
        help="also list folders of 100 to 10000 notebooks and rename folders of 10 to 1000 "
        "files (S3 and local targets)",
    )
    parser.add_argument(
        "--curve-budget-s",
        type=float,
        default=120.0,
        help="skip a curve's point whose time, extrapolated from the previous point, would "
        "pass this (default: 120)",
    )
    parser.add_argument(
        "--aws-pages",
        action="store_true",
        help="also list folders of 1000 to 10000 notebooks with ListObjectsV2 pages capped "
        "at 1000 keys by the proxy, as AWS caps them (S3 targets)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=servers.REPO / "docs" / "img" / "benchmarks.png",
        help="PNG of the curves, written with --curves (default: docs/img/benchmarks.png)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per operation")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=25.0,
        help="seconds of repetitions after which an operation is not repeated again "
        "(default: 25; the old package on GCS needs minutes for some operations)",
    )
    parser.add_argument(
        "--skip-large", action="store_true", help="skip the large-file upload and download"
    )
    parser.add_argument(
        "--large-mb",
        type=int,
        default=256,
        help="size of the large file in MiB (1 MiB chunks; default: 256)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=servers.REPO / "docs" / "benchmarks.md",
        help="report to write (default: docs/benchmarks.md)",
    )
    parser.add_argument("--old-python", help="Python >= 3.12 to create the old package's venv")
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="PICKLE",
        help="measure nothing: write the chart and the report again from a run's saved "
        "measurements (benchmarks/.work/last-run.pickle)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.large_mb < 1:
        parser.error("--large-mb must be at least 1")
    return args


def _machine(storages: dict[str, str]) -> dict[str, str]:
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
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{os.cpu_count()} cores, {cpu}",
        "memory": mem or "unknown",
        "OS": platform.platform(),
        # Other work on the machine skews the timings (not the request counts).
        "load average (1/5/15 min) at the end": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "harness Python": platform.python_version(),
        **storages,
    }


def _weed_version(weed: str) -> str:
    out = subprocess.run([weed, "version"], capture_output=True, text=True).stdout
    # "version 8000GB 4.48 pypi linux amd64": the release is the dotted number.
    found = re.search(r"\b\d+\.\d+(?:\.\d+)?\b", out)
    return found.group(0) if found else "?"


def _sigterm(signum, frame):
    # Turn SIGTERM into an exception so the cleanup in main() runs.
    raise SystemExit(128 + signum)


def _packages(targets: list[str], old_python: str | None) -> list[servers.Package]:
    """The packages to run, in the order of ``targets``; raises SystemExit if one is broken."""
    new = old = None
    out = []
    for name in targets:
        if name == "local":
            pkg = servers.local_package()
        elif name in ("new", "gcs"):
            new = new or servers.new_package()
            pkg = new if name == "new" else new.gcs()
        else:
            old = old or servers.old_package(old_python)
            pkg = old if name == "old" else old.gcs()
        why = servers.check_importable(pkg)
        if why:
            print(f"{name}: the contents manager does not import ({why})", file=sys.stderr)
            raise SystemExit(2)
        out.append(pkg)
    return out


class Run:
    """One benchmark run: its settings, scratch space and what it measured."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.logs = servers.WORK / "logs"
        self.results: dict = {}
        self.large: dict = {}
        self.facts: dict[str, dict[str, str]] = {}
        self.storages: dict[str, str] = {}
        #: target -> {"list": [...], "rename": [...]} (``--curves``)
        self.curves: dict[str, dict[str, list]] = {}
        #: target -> listings under 1000-key pages (``--aws-pages``)
        self.pages: dict[str, list] = {}

    def bench(
        self,
        pkg: servers.Package,
        proxy: Counter,
        direct,
        endpoint: str = "",
        root: Path | None = None,
    ) -> None:
        """Seed ``pkg``'s bucket, start its Jupyter Server, run the workload (and the curves),
        then the large file (without delay)."""
        args = self.args
        self.facts[pkg.name] = pkg.facts()
        version = self.facts[pkg.name].get("s3contents", "not used")
        print(f"{pkg.name}: s3contents {version}, seeding ...")
        seed(direct, pkg.bucket, PREFIX, args.repeat, pkg.marker)
        curves = args.curves and pkg.backend in ("s3", "local")
        pages = args.aws_pages and pkg.backend == "s3"
        list_ns = sorted(set(LIST_NS if curves else ()) | set(PAGES_NS if pages else ()))
        seed_curves(
            direct, pkg.bucket, PREFIX, tuple(list_ns), RENAME_NS if curves else (), pkg.marker
        )
        proxy.set_delay(args.delay_ms)
        jupyter = servers.start_jupyter(
            pkg,
            endpoint,
            PREFIX,
            self.scratch / pkg.name,
            self.logs / f"jupyter-{pkg.name}.log",
            root=root,
        )
        try:
            work = Workload(
                jupyter.url,
                jupyter.token,
                proxy,
                direct,
                pkg.bucket,
                PREFIX,
                args.repeat,
                args.budget_s,
                pid=jupyter.proc.pid,
            )
            self.results[pkg.name] = work.run()
            measure = Curves(work, args.curve_budget_s)
            if curves:
                self.curves[pkg.name] = {
                    "list": measure.listing(LIST_NS),
                    "rename": measure.rename(RENAME_NS),
                }
            if pages and isinstance(proxy, StorageProxy):
                proxy.rewrite = cap_list_pages(storage.SECRET_KEY)
                try:
                    self.pages[pkg.name] = measure.listing(PAGES_NS, "list (1000-key pages)")
                finally:
                    proxy.rewrite = None
            if not args.skip_large:
                proxy.set_delay(0)
                self.large[pkg.name] = large.run(
                    pkg.name, jupyter.url, jupyter.token, jupyter.proc.pid, proxy, args.large_mb
                )
                proxy.set_delay(args.delay_ms)
        finally:
            jupyter.stop()

    def s3(self, packages: list[servers.Package]) -> None:
        with contextlib.ExitStack() as stack:
            weed = storage.start_storage(self.scratch / "weed", self.logs / "seaweedfs.log")
            stack.callback(weed.stop)
            proxy = StorageProxy(
                f"http://127.0.0.1:{weed.port}", delay_ms=self.args.delay_ms, record=False
            ).start()
            stack.callback(proxy.stop)
            # Signatures cover the Host header: prove they survive the proxy before measuring.
            storage.s3_client(proxy.url).list_buckets()
            print(f"SeaweedFS ({weed.helper}) on {weed.endpoint}, counting proxy on {proxy.url}")
            self.storages["S3 storage"] = (
                f"SeaweedFS `weed mini` {_weed_version(storage.find_weed())} on local disk, "
                f"started by `{weed.helper}`"
            )
            direct = storage.S3Direct(weed.endpoint)
            for pkg in packages:
                self.bench(pkg, proxy, direct, proxy.url)

    def local(self, pkg: servers.Package) -> None:
        data = self.scratch / "local-data"
        print(f"local: {servers.LOCAL_MANAGER} on {data}")
        self.bench(pkg, NoStorage(), LocalDirect(data), root=data / pkg.bucket / PREFIX)

    def gcs(self, packages: list[servers.Package]) -> None:
        with contextlib.ExitStack() as stack:
            (port,) = storage.free_ports(1)
            # The proxy first: the emulator must know its address, to hand it out as the
            # Location of resumable uploads.
            proxy = StorageProxy(
                f"http://127.0.0.1:{port}",
                delay_ms=self.args.delay_ms,
                classifier=classify_gcs,
                record=False,
            ).start()
            stack.callback(proxy.stop)
            emulator = gcs.start_fake_gcs(port, proxy.url, self.logs / "fake-gcs-server.log")
            stack.callback(emulator.stop)
            print(f"fake-gcs-server on {emulator.endpoint}, counting proxy on {proxy.url}")
            self.storages["GCS storage"] = (
                f"fake-gcs-server (from {gcs.version(gcs.find_fake_gcs())}), in memory, "
                f"started by `{emulator.helper}`"
            )
            direct = gcs.GCSDirect(emulator.endpoint)
            for pkg in packages:
                self.bench(pkg, proxy, direct, proxy.url)


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


#: What the last run measured (pickled), for ``--report-from``.
LAST_RUN = servers.WORK / "last-run.pickle"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.report_from:
        with open(args.report_from, "rb") as f:
            saved = pickle.load(f)
        return _write(args, saved)
    signal.signal(signal.SIGTERM, _sigterm)
    packages = _packages(args.only, args.old_python)
    scratch = Path(tempfile.mkdtemp(prefix="s3contents-bench-"))
    run = Run(args, scratch)
    try:
        s3 = [p for p in packages if p.backend == "s3"]
        if s3:
            run.s3(s3)
        for pkg in packages:
            if pkg.backend == "local":
                run.local(pkg)
        on_gcs = [p for p in packages if p.backend == "gcs"]
        if on_gcs:
            run.gcs(on_gcs)
    except (KeyboardInterrupt, SystemExit):
        print("interrupted: stopping the servers", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    saved = {
        "command": (".venv/bin/python -m benchmarks " + " ".join(argv or sys.argv[1:])).strip(),
        "results": run.results,
        "large": run.large,
        "facts": run.facts,
        "machine": _machine(run.storages),
        "curves": run.curves,
        "pages": run.pages,
        "delay_ms": args.delay_ms,
        "repeat": args.repeat,
        "large_mb": args.large_mb,
        "budget_s": args.budget_s,
        "curve_budget_s": args.curve_budget_s,
    }
    LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
    with open(LAST_RUN, "wb") as f:
        pickle.dump(saved, f)
    print(f"measurements saved in {LAST_RUN} (--report-from writes the report again)")
    return _write(args, saved)


def _write(args: argparse.Namespace, run: dict) -> int:
    """The chart and the report of a run's measurements (``run``: as saved in LAST_RUN)."""
    chart_note = ""
    if run["curves"]:
        chart_note = chart.write(run["curves"], args.chart)
        print(chart_note or f"wrote {args.chart}")
    previous = args.out.read_text() if args.out.exists() else ""
    text = report.document(
        run["results"],
        run["large"],
        run["facts"],
        run["machine"],
        run["delay_ms"],
        run["repeat"],
        run["large_mb"],
        run["command"],
        run["budget_s"],
        curves=run["curves"],
        pages=run["pages"],
        chart=_relative(args.chart, args.out.parent) if run["curves"] and not chart_note else None,
        previous=previous,
        curve_budget=run["curve_budget_s"],
    )
    groups, notes = report.tables(run["results"])
    for heading, server, table in groups:
        print(f"\n{heading} ({server}):\n{table}")
    if run["large"]:
        print("\nLarge files:\n" + report.large_table(run["large"], notes))
    for i, note in enumerate(notes, 1):
        print(f"[{i}] {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
