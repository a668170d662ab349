"""Large files: a chunked upload and a ``/files/`` download, with the server's memory.

The upload is JupyterLab's protocol: sequential ``PUT /api/contents/<path>`` with
``{"type": "file", "format": "base64", "chunk": n, "content": <1 MiB base64-encoded>}``,
numbered 1, 2, ... and ``-1`` for the last.  The download is ``GET /files/<path>``, read in
pieces and hashed as it comes, never held whole.  Meanwhile a thread samples the resident set
of the Jupyter Server process and its children from ``/proc`` every 50 ms; the kernel's own
high-water mark (``VmHWM``, reset through ``/proc/PID/clear_refs`` before each phase) catches
what falls between two samples.  The bytes are random (seeded), the request bodies are made
before the clock starts, and the file's SHA-256 is compared with that of the download.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from .probe import StallProbe

if TYPE_CHECKING:
    from .workload import Counter as StorageProxy

CHUNK = 1024 * 1024  # JupyterLab's chunk size
SAMPLE_EVERY = 0.05
PATH = "large-file.bin"


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (kernels, helpers), from ``/proc/PID/task/*/children``."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants."""
    return sum((_status_kb(p, "VmRSS") or 0) * 1024 for p in _tree(pid))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (its own threads, not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields 14 and 15 of stat (utime, stime), counted after the ")" that ends the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_hwm(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark of ``pid`` to its current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def hwm(pid: int) -> int | None:
    kb = _status_kb(pid, "VmHWM")
    return kb * 1024 if kb is not None else None


class RssSampler:
    """Samples :func:`tree_rss` in a thread; :meth:`stop` returns the highest sample."""

    def __init__(self, pid: int, every: float = SAMPLE_EVERY) -> None:
        self.pid = pid
        self.every = every
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, tree_rss(self.pid))
            self.samples += 1
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, tree_rss(self.pid))


@dataclass
class Phase:
    """One direction: its time, the server's memory, the storage requests."""

    seconds: float | None = None
    rss_before: int = 0  # the server's RSS when the phase started
    rss_peak: int = 0  # highest sample during the phase
    hwm: int | None = None  # kernel's high-water mark of the server process
    samples: int = 0
    cpu: float = 0.0  # CPU seconds the server process used during the phase
    stall: float = 0.0  # longest single GET /api/status wait during the phase (s)
    counts: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass
class LargeResult:
    name: str
    size: int
    upload: Phase = field(default_factory=Phase)
    download: Phase = field(default_factory=Phase)
    sha_sent: str = ""
    sha_received: str = ""
    error: str | None = None
    download_via: str = "/files/"
    files_status: str | None = None  # why /files/ did not serve the file, if it did not

    @property
    def roundtrip_ok(self) -> bool:
        return bool(self.sha_sent) and self.sha_sent == self.sha_received


def _why(resp: requests.Response) -> str:
    """``HTTP 404 Not Found``, with Jupyter's JSON message if there is one (not its HTML)."""
    text = f"HTTP {resp.status_code} {resp.reason}"
    with contextlib.suppress(ValueError, AttributeError):
        message = resp.json().get("message")
        if message:
            text += f": {str(message)[:300]}"
    return text


def _chunk(i: int) -> bytes:
    return random.Random(i).randbytes(CHUNK)


def run(
    name: str,
    base_url: str,
    token: str,
    pid: int,
    proxy: StorageProxy,
    size_mb: int,
    log=print,
) -> LargeResult:
    """Upload ``size_mb`` MiB in 1 MiB chunks, download it again; measure both."""
    n = max(1, size_mb)
    result = LargeResult(name, n * CHUNK)
    http = requests.Session()
    http.trust_env = False
    http.headers["Authorization"] = f"token {token}"
    base = base_url.rstrip("/")
    probe = StallProbe(base, token)
    try:
        _upload(http, f"{base}/api/contents/{PATH}", n, pid, proxy, result, probe)
        _download(http, base, pid, proxy, result, probe)
        if not result.roundtrip_ok:
            result.error = "the downloaded bytes differ from the uploaded ones (SHA-256)"
    except (requests.RequestException, RuntimeError) as exc:
        result.error = str(exc)[:500]
    finally:
        http.close()
    up, down = result.upload, result.download
    log(
        f"  {'large file ' + str(size_mb) + ' MiB':<40} "
        + (
            f"FAILED: {result.error}"
            if result.error
            else f"up {mibps(result.size, up.seconds)} MiB/s peak {up.rss_peak >> 20} MiB, "
            f"down {mibps(result.size, down.seconds)} MiB/s peak {down.rss_peak >> 20} MiB"
            + (f" via {result.download_via} ({result.files_status})" if result.files_status else "")
        )
    )
    return result


def mibps(size: int, seconds: float | None) -> str:
    if not seconds:
        return "-"
    return f"{size / seconds / CHUNK:.0f}"


def _phase_start(pid: int, proxy: StorageProxy, phase: Phase) -> None:
    proxy.wait_idle()
    proxy.reset()
    phase.rss_before = tree_rss(pid)
    reset_hwm(pid)
    phase.cpu = -cpu_seconds(pid)


def _phase_end(pid: int, proxy: StorageProxy, phase: Phase, sampler: RssSampler) -> None:
    phase.rss_peak = sampler.peak
    phase.samples = sampler.samples
    phase.hwm = hwm(pid)
    phase.cpu += cpu_seconds(pid)
    proxy.wait_idle()
    phase.counts, phase.statuses = proxy.snapshot()


def _bodies(n: int) -> tuple[list[bytes], str]:
    """The ``n`` request bodies of the upload and the SHA-256 of the file they carry.

    Made before the clock starts (about 1.4 MB each, so a 256 MiB file takes 360 MB here, in
    the harness), so that the upload's speed is the server's, not that of this generator.
    """
    digest = hashlib.sha256()
    bodies = []
    for i in range(n):
        data = _chunk(i)
        digest.update(data)
        # json.dumps would spend longer checking the base64 text for characters to escape
        # (there are none) than the server takes to store the chunk.
        bodies.append(
            b'{"type": "file", "format": "base64", "chunk": %d, "content": "%s"}'
            % (-1 if i == n - 1 else i + 1, base64.b64encode(data))
        )
    return bodies, digest.hexdigest()


def _upload(
    http,
    url: str,
    n: int,
    pid: int,
    proxy: StorageProxy,
    result: LargeResult,
    probe: StallProbe,
) -> None:
    bodies, result.sha_sent = _bodies(n)
    phase = result.upload
    _phase_start(pid, proxy, phase)
    with RssSampler(pid) as sampler, probe:
        start = time.perf_counter()
        for i in range(n):
            resp = http.put(url, data=bodies[i], timeout=600)
            bodies[i] = b""
            if resp.status_code not in (200, 201):
                raise RuntimeError(f"chunk {i + 1}/{n}: {_why(resp)}")
        phase.seconds = time.perf_counter() - start
    phase.stall = probe.longest
    _phase_end(pid, proxy, phase, sampler)
    model = resp.json()
    if model.get("size") not in (None, result.size):
        raise RuntimeError(f"the saved file has {model.get('size')} bytes, sent {result.size}")


def _download(
    http, base: str, pid: int, proxy: StorageProxy, result: LargeResult, probe: StallProbe
) -> None:
    """``GET /files/``, streamed; if that is not found (s3contents 0.13 serves /files/ from
    the server's local disk), the file's bytes as the old package serves them: the contents
    API's base64 model."""
    files = _fetch(http, f"{base}/files/{PATH}", pid, proxy, result, probe, api=False)
    if files is not None:
        result.download_via = "/api/contents (base64)"
        result.files_status = files
        result.download = Phase()
        _fetch(http, f"{base}/api/contents/{PATH}", pid, proxy, result, probe, api=True)


def _fetch(
    http,
    url: str,
    pid: int,
    proxy: StorageProxy,
    result: LargeResult,
    probe: StallProbe,
    api: bool,
) -> str | None:
    """One download phase; returns why /files/ was not found (None: downloaded)."""
    digest = hashlib.sha256()
    phase = result.download
    _phase_start(pid, proxy, phase)
    received = 0
    params = {"type": "file", "format": "base64", "content": "1"} if api else None
    with RssSampler(pid) as sampler, probe:
        start = time.perf_counter()
        with http.get(url, params=params, stream=not api, timeout=600) as resp:
            if resp.status_code == 404 and not api:
                return _why(resp)
            if resp.status_code != 200:
                raise RuntimeError(f"GET {url.split('/', 3)[-1]}: {_why(resp)}")
            if api:
                data = base64.b64decode(resp.json()["content"])
                digest.update(data)
                received = len(data)
                del data
            else:
                for piece in resp.iter_content(CHUNK):
                    digest.update(piece)
                    received += len(piece)
        phase.seconds = time.perf_counter() - start
    phase.stall = probe.longest
    _phase_end(pid, proxy, phase, sampler)
    result.sha_received = digest.hexdigest()
    if received != result.size:
        raise RuntimeError(f"downloaded {received} bytes of {result.size}")
    return None
