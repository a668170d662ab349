"""The workload: seed a bucket, then time contents operations through Jupyter's REST API.

Seeding writes straight to the storage server (SeaweedFS or fake-gcs-server), bypassing the
proxy, and is not measured.
Every measured operation is one REST call; the proxy's counters are reset before it and read
once the contents manager has gone quiet after it.  Each outcome is checked (status code, and
the resulting state through a second, unmeasured call or straight in the bucket) so that a
failing operation is reported as failed rather than as fast.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import nbformat
import requests
from nbformat import v4

from .large import cpu_seconds
from .probe import StallProbe


class Counter(Protocol):
    """What the workload needs of the counting proxy (:class:`~tests.support.proxy.
    StorageProxy`, or :class:`~benchmarks.local.NoStorage` for the local target)."""

    def wait_idle(self, quiet: float = 0.05, timeout: float = 10.0) -> None: ...

    def reset(self) -> None: ...

    def snapshot(self) -> tuple[dict[str, int], dict[int, int]]: ...

    def set_delay(self, delay_ms: float) -> None: ...


BIG_NOTEBOOKS = 1000
BIG_FOLDERS = 50
FOLDER_FILES = 200


def _notebook(cells: int, source_bytes: int, output_bytes: int = 0) -> bytes:
    nb = v4.new_notebook()
    line = "x = 1  # padding to reach the target size of this notebook\n"
    source = (line * (source_bytes // len(line) + 1))[:source_bytes]
    for i in range(cells):
        cell = v4.new_code_cell(source=source, execution_count=i + 1)
        if output_bytes:
            text = ("0123456789abcdef" * (output_bytes // 16 + 1))[:output_bytes]
            cell.outputs = [v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    nb.cells.insert(0, v4.new_markdown_cell("# Benchmark notebook"))
    return nbformat.writes(nb).encode()


MEDIUM_CELLS = 82  # of 2 KB source each: ~200 KB
LARGE_CELLS, LARGE_OUTPUT = 100, 100_000  # ~10 MB, mostly outputs
SMALL_NB = _notebook(3, 300, 200)  # ~2.5 KB: the 1000 notebooks of big/
MEDIUM_NB = _notebook(MEDIUM_CELLS, 2000)
LARGE_NB = _notebook(LARGE_CELLS, 200, LARGE_OUTPUT)


@dataclass
class Result:
    """Measurements of one operation: one entry per repetition."""

    op: str
    counts: list[dict[str, int]] = field(default_factory=list)
    statuses: list[dict[int, int]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    error: str | None = None
    wanted: int = 0  # repetitions asked for (fewer are made past the time budget)
    #: Longest single ``GET /api/status`` wait while the call ran, per repetition (s).
    stalls: list[float] = field(default_factory=list)
    #: Server process CPU (user + sys) per repetition, the status polls' share taken out (s).
    cpus: list[float] = field(default_factory=list)
    skipped: str | None = None  # why it was not measured at all
    n: int = 0  # size of a curve's point (entries listed, files renamed)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def stall(self) -> float | None:
        return statistics.median(self.stalls) if self.stalls else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(self.cpus) if self.cpus else None


class Failed(Exception):
    """An operation did not do what it should."""


def seed(store, bucket: str, prefix: str, repeat: int, marker: str) -> None:
    """Create ``bucket`` and lay out the fixtures every operation needs, for ``repeat`` runs.

    ``store`` is a direct client (:class:`~benchmarks.storage.S3Direct` or
    :class:`~benchmarks.gcs.GCSDirect`); ``marker`` the folder marker object's name, as
    s3contents 0.13 writes and expects it (``.s3keep``, ``.gcskeep``).
    """
    store.create_bucket(bucket)
    objects: dict[str, bytes] = {}

    def folder(path: str) -> None:
        objects[f"{path}/{marker}"] = b""

    folder("big")
    for i in range(BIG_NOTEBOOKS):
        objects[f"big/nb-{i:04d}.ipynb"] = SMALL_NB
    for i in range(BIG_FOLDERS):
        folder(f"big/sub-{i:02d}")
        objects[f"big/sub-{i:02d}/data.txt"] = b"some data\n"
    folder("save")
    objects["save/medium.ipynb"] = MEDIUM_NB
    objects["save/large.ipynb"] = LARGE_NB
    folder("ren")
    objects["ren/file-0.ipynb"] = SMALL_NB
    folder("mvdir-0")
    for j in range(FOLDER_FILES):
        objects[f"mvdir-0/f-{j:03d}.txt"] = b"x\n"
    for i in range(repeat):
        folder(f"new-{i}")
        folder(f"del-{i}")
        for j in range(FOLDER_FILES):
            objects[f"del-{i}/f-{j:03d}.txt"] = b"x\n"
    folder("ckpt")
    objects["ckpt/nb.ipynb"] = SMALL_NB

    store.put_many(bucket, {f"{prefix}/{key}": data for key, data in objects.items()})


class Workload:
    """Runs the operations against one Jupyter Server, counting through ``proxy``."""

    def __init__(
        self,
        url: str,
        token: str,
        proxy: Counter,
        store,
        bucket: str,
        prefix: str,
        repeat: int,
        budget: float = float("inf"),
        pid: int = 0,
    ) -> None:
        self.url = url.rstrip("/") + "/api/contents"
        self.probe = StallProbe(url, token)
        self.pid = pid  # the server's, for its CPU time
        self.status_cpu = 0.0  # server CPU per status poll, taken out of an operation's
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        self.proxy = proxy
        self.store = store  # direct (unproxied) client, for checks
        self.bucket = bucket
        self.prefix = prefix
        self.repeat = repeat
        # Seconds of repetitions after which an operation is not repeated again (the old
        # package takes minutes for some operations on GCS).
        self.budget = budget
        self.checkpoint_id = ""
        self.new_path = ""

    # -- plumbing --------------------------------------------------------------------

    def call(self, method: str, path: str, expect: int, body=None, **params) -> requests.Response:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        resp = self.http.request(
            method, f"{self.url}/{path}".rstrip("/"), params=params or None, data=data, timeout=600
        )
        if resp.status_code != expect:
            raise Failed(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}")
        return resp

    def calibrate(self, polls: int = 300) -> None:
        """Server CPU of one status poll, to take the probe's share out of an operation's."""
        cpu = cpu_seconds(self.pid)
        for _ in range(polls):
            self.probe.http.get(self.probe.url, timeout=60)
        self.status_cpu = max(0.0, cpu_seconds(self.pid) - cpu) / polls

    def measure(
        self,
        op: str,
        fn: Callable[[int], None],
        verify: Callable[[int], None],
        repeat: int | None = None,
    ) -> Result:
        repeat = repeat or self.repeat
        result = Result(op, wanted=repeat)
        for i in range(repeat):
            self.proxy.wait_idle()
            self.proxy.reset()
            cpu = cpu_seconds(self.pid)
            with self.probe:
                start = time.perf_counter()
                try:
                    fn(i)
                except (Failed, requests.RequestException) as exc:
                    result.error = str(exc)
                elapsed = time.perf_counter() - start
            self.proxy.wait_idle()
            used = cpu_seconds(self.pid) - cpu - self.probe.polls * self.status_cpu
            counts, statuses = self.proxy.snapshot()
            result.counts.append(counts)
            result.statuses.append(statuses)
            if result.error is None:
                if 403 in statuses:
                    result.error = "S3 answered 403: signature or credentials rejected"
                else:
                    try:
                        verify(i)
                    except (Failed, requests.RequestException, KeyError, ValueError) as exc:
                        result.error = f"check failed: {exc}"
            if result.error is not None:
                break  # later repetitions depend on this one's outcome
            result.times.append(elapsed)
            result.stalls.append(self.probe.longest)
            result.cpus.append(max(0.0, used))
            if sum(result.times) >= self.budget:
                break
        return result

    def object_size(self, key: str) -> int:
        return self.store.size(self.bucket, f"{self.prefix}/{key}")

    def keys(self, folder: str) -> list[str]:
        """Keys under ``folder/`` in the bucket, read directly (the truth, whatever the
        contents manager's caches say)."""
        return self.store.keys(self.bucket, f"{self.prefix}/{folder}/")

    def exists(self, key: str) -> bool:
        return f"{self.prefix}/{key}" in self.store.keys(self.bucket, f"{self.prefix}/{key}")

    # -- operations --------------------------------------------------------------------

    def run(self, log=print) -> list[Result]:
        # Warm up: the first requests of a process open connections and build clients.
        self.call("GET", "", 200)
        self.call("GET", "ckpt/nb.ipynb", 200, content=1)
        self.calibrate()
        results = []
        for op, fn, verify in self.operations():
            result = self.measure(op, fn, verify)
            status = f"FAILED: {result.error}" if result.error else f"{result.median:.3f} s"
            log(f"  {op:<40} {status}")
            results.append(result)
        return results

    def operations(self):
        def listing(i):
            model = self.call("GET", "big", 200, content=1).json()
            n = len(model["content"])
            if n != BIG_NOTEBOOKS + BIG_FOLDERS:
                raise Failed(f"big/ lists {n} entries")

        def open_nb(i):
            model = self.call("GET", "big/nb-0001.ipynb", 200, content=1).json()
            if model["type"] != "notebook" or not model["content"]["cells"]:
                raise Failed("not a notebook with cells")

        def open_large(i):
            model = self.call("GET", "save/large.ipynb", 200, content=1).json()
            if model["type"] != "notebook" or len(model["content"]["cells"]) != LARGE_CELLS + 1:
                raise Failed("not the large notebook")

        def meta(i):
            model = self.call("GET", "big/nb-0002.ipynb", 200, content=0).json()
            if model["type"] != "notebook" or model.get("content") is not None:
                raise Failed("unexpected metadata model")

        def saver(name: str, raw: bytes):
            body = json.dumps(
                {"type": "notebook", "format": "json", "content": json.loads(raw)}
            ).encode()

            def save(i):
                self.call("PUT", f"save/{name}", 200, body=body)

            def verify(i):
                # The manager may serialise differently (indent), not much smaller.
                size = self.object_size(f"save/{name}")
                if size < 0.8 * len(raw):
                    raise Failed(f"saved {size} bytes, sent {len(raw)}")

            return save, verify

        def new_nb(i):
            model = self.call("POST", f"new-{i}", 201, body={"type": "notebook"}).json()
            self.new_path = model["path"]

        def new_nb_check(i):
            if not self.new_path.startswith(f"new-{i}/Untitled"):
                raise Failed(f"created {self.new_path}")
            self.call("GET", self.new_path, 200, content=0)

        def rename(i):
            self.call("PATCH", f"ren/file-{i}.ipynb", 200, body={"path": f"ren/file-{i + 1}.ipynb"})

        def rename_check(i):
            self.call("GET", f"ren/file-{i + 1}.ipynb", 200, content=1)
            if not self.exists(f"ren/file-{i + 1}.ipynb") or self.exists(f"ren/file-{i}.ipynb"):
                raise Failed("the bucket does not show the rename")

        def rename_dir(i):
            self.call("PATCH", f"mvdir-{i}", 200, body={"path": f"mvdir-{i + 1}"})

        def rename_dir_check(i):
            n = len(self.call("GET", f"mvdir-{i + 1}", 200, content=1).json()["content"])
            if n != FOLDER_FILES:
                raise Failed(f"renamed folder lists {n} entries")
            moved, left = self.keys(f"mvdir-{i + 1}"), self.keys(f"mvdir-{i}")
            if len(moved) < FOLDER_FILES or left:
                raise Failed(f"bucket: {len(moved)} objects moved, {len(left)} left behind")

        def delete_dir(i):
            self.call("DELETE", f"del-{i}", 204)

        def delete_dir_check(i):
            left = self.keys(f"del-{i}")
            if left:
                raise Failed(f"{len(left)} objects left in the bucket")

        def ckpt_create(i):
            self.checkpoint_id = self.call("POST", "ckpt/nb.ipynb/checkpoints", 201).json()["id"]

        def ckpt_list(i):
            ids = [c["id"] for c in self.call("GET", "ckpt/nb.ipynb/checkpoints", 200).json()]
            if self.checkpoint_id not in ids:
                raise Failed(f"checkpoint {self.checkpoint_id!r} not in {ids}")

        def ckpt_restore(i):
            self.call("POST", f"ckpt/nb.ipynb/checkpoints/{self.checkpoint_id}", 204)

        def ckpt_check(i):
            self.call("GET", "ckpt/nb.ipynb", 200, content=1)

        def nothing(i):
            pass

        save_medium, verify_medium = saver("medium.ipynb", MEDIUM_NB)
        save_large, verify_large = saver("large.ipynb", LARGE_NB)
        return [
            (f"list folder ({BIG_NOTEBOOKS} notebooks, {BIG_FOLDERS} folders)", listing, nothing),
            ("open notebook (content=1)", open_nb, nothing),
            (f"open notebook ({len(LARGE_NB) / 1e6:.0f} MB)", open_large, nothing),
            ("notebook metadata (content=0)", meta, nothing),
            (f"save notebook ({len(MEDIUM_NB) // 1000} KB)", save_medium, verify_medium),
            (f"save notebook ({len(LARGE_NB) / 1e6:.0f} MB)", save_large, verify_large),
            ("new untitled notebook", new_nb, new_nb_check),
            ("rename file", rename, rename_check),
            (f"rename folder ({FOLDER_FILES} files)", rename_dir, rename_dir_check),
            (f"delete folder ({FOLDER_FILES} files)", delete_dir, delete_dir_check),
            ("create checkpoint", ckpt_create, nothing),
            ("list checkpoints", ckpt_list, nothing),
            ("restore checkpoint", ckpt_restore, ckpt_check),
        ]


# -- curves: how listing and renaming a folder grow with its size -----------------------------

LIST_NS = (100, 1000, 5000, 10000)
RENAME_NS = (10, 100, 1000)
#: Folder sizes listed under ``--aws-pages`` (2500 entries: three pages of at most 1000).
PAGES_NS = (1000, 2500, 5000, 10000)


def seed_curves(
    store,
    bucket: str,
    prefix: str,
    list_ns: tuple[int, ...],
    rename_ns: tuple[int, ...],
    marker: str,
) -> None:
    """Folders of ``n`` notebooks to list (``curve/list-N``) and of ``n`` small files to
    rename (``curve/mv-N-0``), written straight to the storage, concurrently."""
    objects: dict[str, bytes] = {}
    for n in list_ns:
        objects[f"curve/list-{n}/{marker}"] = b""
        for i in range(n):
            objects[f"curve/list-{n}/nb-{i:05d}.ipynb"] = SMALL_NB
    for n in rename_ns:
        objects[f"curve/mv-{n}-0/{marker}"] = b""
        for i in range(n):
            objects[f"curve/mv-{n}-0/f-{i:05d}.txt"] = b"x\n"
    if objects:
        store.put_many(bucket, {f"{prefix}/{key}": data for key, data in objects.items()})


def _curve(
    points: list[tuple[int, Callable[[], Result]]], budget: float, label: str
) -> list[Result]:
    """Measure the points in order of size; skip one whose time, extrapolated linearly from
    the previous point, would pass ``budget`` seconds."""
    out: list[Result] = []
    for n, measure in points:
        last = out[-1] if out else None
        if last is not None and last.median is not None and last.n:
            guess = last.median * n / last.n
            if guess > budget:
                out.append(
                    Result(
                        f"{label} {n}",
                        n=n,
                        skipped=f"not measured: {last.n} took {last.median:.0f} s, so {n} "
                        f"would take about {guess / 60:.0f} min",
                    )
                )
                continue
        if last is not None and (last.skipped or last.error):
            out.append(Result(f"{label} {n}", n=n, skipped="not measured (smaller one was not)"))
            continue
        result = measure()
        result.n = n
        out.append(result)
    return out


class Curves:
    """The curve operations of one target, through its :class:`Workload`."""

    def __init__(self, work: Workload, budget: float, log=print) -> None:
        self.work = work
        self.budget = budget
        self.log = log

    def _show(self, result: Result) -> Result:
        if result.skipped:
            status = result.skipped
        elif result.error:
            status = f"FAILED: {result.error}"
        else:
            status = f"{result.median:.3f} s, stall {1000 * (result.stall or 0):.0f} ms"
        self.log(f"  {result.op:<40} {status}")
        return result

    def listing(self, ns: tuple[int, ...], label: str = "list folder of") -> list[Result]:
        w = self.work

        def point(n: int) -> Callable[[], Result]:
            def fn(i: int) -> None:
                model = w.call("GET", f"curve/list-{n}", 200, content=1).json()
                if len(model["content"]) != n:
                    raise Failed(f"curve/list-{n} lists {len(model['content'])} entries")

            return lambda: self._show(w.measure(f"{label} {n}", fn, lambda i: None))

        return _curve([(n, point(n)) for n in ns], self.budget, label)

    def rename(self, ns: tuple[int, ...]) -> list[Result]:
        w = self.work

        def point(n: int) -> Callable[[], Result]:
            def fn(i: int) -> None:
                w.call("PATCH", f"curve/mv-{n}-0", 200, body={"path": f"curve/mv-{n}-1"})

            def verify(i: int) -> None:
                moved, left = w.keys(f"curve/mv-{n}-1"), w.keys(f"curve/mv-{n}-0")
                if len(moved) < n or left:
                    raise Failed(f"bucket: {len(moved)} objects moved, {len(left)} left behind")

            # Once: each repetition would need a folder of its own.
            return lambda: self._show(w.measure(f"rename folder of {n}", fn, verify, repeat=1))

        return _curve([(n, point(n)) for n in ns], self.budget, "rename folder of")
