"""A real JupyterHub for the tests: its proxy, its users' JupyterLab servers on SeaweedFS.

:func:`start_hub` runs ``python -m jupyterhub`` in a folder of the test's own, with

* configurable-http-proxy, the Node.js proxy from npm (``./dev`` installs it into
  ``.venv/node`` with ``npm ci``, from ``requirements/node/``; :func:`find_proxy` finds it),
  started by the hub;
* ``SharedPasswordAuthenticator``, the hub's own authenticator with one password for all
  (``DummyAuthenticator.password`` is deprecated since JupyterHub 5.3 in its favour): the
  users given are allowed, no other;
* ``SimpleLocalProcessSpawner``: each user's server is ``jupyterhub-singleuser`` (JupyterLab)
  run as this user (no system accounts), its home a folder of its own under the hub's,
  its output in ``<home>/singleuser.log``, its contents in the bucket through
  ``s3contents.S3ContentsManager`` configured as docs/jupyterhub.md configures it on Zero to
  JupyterHub: the settings in the spawner's ``environment`` (``JPY_S3_BUCKET``,
  ``JPY_S3_PREFIX = "users/{username}"``..., the template as written: the spawner does not
  fill in its ``environment``; s3contents does, from ``JUPYTERHUB_USER``), the contents
  manager class in a ``jupyter_server_config.py`` of a Jupyter config folder;
* a service holding an admin token for the test (users, their servers read, their tokens).

Everything listens on loopback: the proxy's public port, its API, the hub and each user's
server. The S3 credentials, the admin token and the password reach the hub through its
environment only (its config file reads them from there: none of them on disk or on a
command line), and the single-user servers get the S3 credentials through the spawner's
``environment`` (``JPY_S3_*``, the names the README documents).

:meth:`Hub.stop` stops the hub by PID (SIGTERM: it stops the servers it spawned and the
proxy), then, by PID, whatever of them is still running: each process is checked to be
ours by its working directory, inside the hub's folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

from s3contents.embedded import LOOPBACK, free_ports, stop_process
from tests.support.jupyter_procs import LoggedProcess
from tests.support.servers import S3Server, spawn

__all__ = [
    "PREFIX_TEMPLATE",
    "PROXY_PACKAGE",
    "SERVER_CONFIG",
    "USERS",
    "Hub",
    "HubStartError",
    "HubUnavailable",
    "find_proxy",
    "start_hub",
]

#: The npm package the tests run as the hub's proxy (pinned in requirements/node/).
PROXY_PACKAGE = "configurable-http-proxy"
#: The hub's users in the tests: one name as most are, one that s3contents must escape in a
#: key (a letter outside ASCII, and a dot).
USERS = ("alice", "zoë.smith")
#: The prefix each user's server is configured with, as a hub's operator writes it.
PREFIX_TEMPLATE = "users/{username}"

#: The single-user servers' ``jupyter_server_config.py``, as docs/jupyterhub.md's Helm values
#: put it in ``/usr/local/etc/jupyter/``; the S3 settings come from the environment.
SERVER_CONFIG = """\
from s3contents import S3ContentsManager

c.ServerApp.contents_manager_class = S3ContentsManager
"""

_ROOT = Path(__file__).resolve().parents[2]
_SINGLEUSER_LOG = "singleuser.log"
#: How Python's and Node.js's errors of a port in use end (lower case).
_PORT_TAKEN = "address already in use"


class HubUnavailable(RuntimeError):
    """What the hub test needs is not installed here (the message says what and how)."""


def _proxy_candidates() -> Iterable[Path]:
    override = os.environ.get("S3CONTENTS_CHP")
    if override:
        yield Path(override)
        return
    # ./dev installs it into .venv/node; a worktree running another checkout's venv finds it
    # beside the interpreter that runs the tests.
    for venv in (Path(sys.prefix), _ROOT / ".venv"):
        yield venv / "node" / "node_modules" / ".bin" / PROXY_PACKAGE


def find_proxy() -> str:
    """The ``configurable-http-proxy`` command (``S3CONTENTS_CHP`` if set), checked to run;
    :class:`HubUnavailable` with what to do when it is missing or does not run."""
    if shutil.which("node") is None:
        raise HubUnavailable(
            "no Node.js (node) on PATH: the hub's proxy, configurable-http-proxy, runs on it "
            "(as root: apt-get install -y nodejs npm, then ./dev installs the proxy)"
        )
    tried = list(_proxy_candidates())
    for path in tried:
        if path.is_file() and os.access(path, os.X_OK):
            done = subprocess.run(
                [str(path), "--version"], capture_output=True, text=True, timeout=60
            )
            if done.returncode != 0:
                raise HubUnavailable(f"{path} --version failed: {done.stderr.strip()[-500:]}")
            return str(path)
    npm = "npm is on PATH" if shutil.which("npm") else "npm is not on PATH either"
    raise HubUnavailable(
        f"{PROXY_PACKAGE} is not installed (looked for {', '.join(map(str, tried))}; {npm}): "
        "./dev installs it with the test extra (npm ci into .venv/node from "
        "requirements/node/), or set S3CONTENTS_CHP to its command"
    )


_CONFIG = '''\
"""JupyterHub config of one test (tests/hub/hub_support.py); secrets come from the
environment the test started the hub with."""
import os
import subprocess

settings = {settings!r}
secret = os.environ.pop

c = get_config()  # noqa: F821
c.JupyterHub.bind_url = settings["public_url"]
c.JupyterHub.hub_bind_url = settings["hub_url"]
c.JupyterHub.db_url = "sqlite:///" + settings["folder"] + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = settings["folder"] + "/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = settings["folder"] + "/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.ConfigurableHTTPProxy.api_url = settings["proxy_api_url"]
c.ConfigurableHTTPProxy.auth_token = secret("S3C_HUB_PROXY_TOKEN")
c.ConfigurableHTTPProxy.pid_file = settings["folder"] + "/proxy.pid"
c.ConfigurableHTTPProxy.debug = False

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = secret("S3C_HUB_USER_PASSWORD")
c.Authenticator.allowed_users = set(settings["users"])

c.JupyterHub.services = [{{"name": "s3c-tests", "api_token": secret("S3C_HUB_ADMIN_TOKEN")}}]
c.JupyterHub.load_roles = [
    {{
        "name": "s3c-tests",
        "scopes": ["admin:users", "read:servers", "tokens"],
        "services": ["s3c-tests"],
    }}
]

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = settings["folder"] + "/home/{{username}}"
c.Spawner.ip = settings["ip"]
c.Spawner.cmd = settings["cmd"]
c.Spawner.args = settings["args"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = settings["start_timeout"]
c.Spawner.http_timeout = settings["start_timeout"]
c.Spawner.environment = dict(
    settings["environment"],
    JPY_S3_ACCESS_KEY_ID=secret("S3C_HUB_S3_KEY"),
    JPY_S3_SECRET_ACCESS_KEY=secret("S3C_HUB_S3_SECRET"),
)


def single_user_log(spawner):
    """Each user's server writes its output to singleuser.log in its home."""
    os.makedirs(spawner.home_dir, exist_ok=True)
    log = open(os.path.join(spawner.home_dir, "{log}"), "ab")
    spawner.popen_kwargs = {{"stdout": log, "stderr": subprocess.STDOUT}}


c.Spawner.pre_spawn_hook = single_user_log
'''


@dataclass
class Hub(LoggedProcess):
    """A JupyterHub that this process started, and how to reach it."""

    url: str
    """The proxy's public URL (``http://127.0.0.1:<port>``), no trailing slash."""
    folder: Path
    admin_token: str = field(repr=False)
    password: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ HTTP

    def session(self) -> requests.Session:
        """A new HTTP session (a browser's cookie jar), no proxy from the environment."""
        session = requests.Session()
        session.trust_env = False
        return session

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the hub's REST API (``/hub/api`` + ``path``) with the admin token."""
        with self.session() as session:
            return session.request(
                method,
                f"{self.url}/hub/api{path}",
                headers={"Authorization": f"token {self.admin_token}"},
                timeout=60,
                **kwargs,
            )

    def login(
        self, session: requests.Session, user: str, password: str | None = None
    ) -> requests.Response:
        """Log ``user`` in through ``/hub/login``'s form, as a browser does (redirects
        followed); the last answer."""
        url = f"{self.url}/hub/login"
        page = session.get(url, timeout=60)
        page.raise_for_status()
        xsrf = session.cookies.get("_xsrf", path="/hub/")
        assert xsrf, f"no _xsrf cookie from {url}: {dict(session.cookies)}"
        answer = session.post(
            url,
            data={
                "username": user,
                "password": self.password if password is None else password,
                "_xsrf": xsrf,
            },
            timeout=60,
        )
        return answer

    def user_token(self, user: str) -> str:
        """A new API token of ``user``'s own, asked of the hub's REST API by the admin."""
        answer = self.admin(
            "POST",
            f"/users/{quote(user)}/tokens",
            json={"note": "s3contents hub test", "expires_in": 600},
        )
        assert answer.status_code == 201, (answer.status_code, answer.text)
        token: str = answer.json()["token"]
        return token

    def user_model(self, user: str) -> dict[str, Any]:
        answer = self.admin("GET", f"/users/{quote(user)}")
        answer.raise_for_status()
        model: dict[str, Any] = answer.json()
        return model

    def wait_ready(self, user: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until ``user``'s default server is ready; its server model."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            server = self.user_model(user).get("servers", {}).get("")
            if server and server.get("ready"):
                return dict(server)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{user}'s server not ready after {timeout:.0f}s ({server}):\n"
                    f"{self.log_tail()}\n--- {user}'s server:\n{self.single_user_log(user)[-3000:]}"
                )
            time.sleep(0.25)

    # ------------------------------------------------------------------ logs and processes

    def home(self, user: str) -> Path:
        return self.folder / "home" / user

    def single_user_log(self, user: str) -> str:
        """The whole output of ``user``'s server so far."""
        path = self.home(user) / _SINGLEUSER_LOG
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> dict[str, str]:
        """Every log of this hub: the hub's own (with the proxy's) and each server's."""
        found = {"hub": self.log()}
        for path in sorted((self.folder / "home").glob(f"*/{_SINGLEUSER_LOG}")):
            found[path.parent.name] = path.read_text(errors="replace")
        return found

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"jupyterhub exited with code {self.process.returncode}:\n{self.log_tail()}"
            )

    def _children(self) -> list[int]:
        """PIDs of the processes the hub started (its proxy, the users' servers) that still
        run: those whose working directory is in the hub's folder (the hub's own cwd for the
        proxy, a user's home for a server)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or self.process is None:
                continue
            if int(entry.name) == self.process.pid:
                continue
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")).is_relative_to(self.folder):
                    pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """Stop the hub (SIGTERM by PID; it stops its servers and its proxy), then by PID
        whatever it started that still runs; idempotent."""
        if self.process is not None:
            left = self._children()
            process = self.process
            stop_process(process, 30.0)
            for pid in left:
                with contextlib.suppress(OSError):
                    if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(self.folder):
                        os.kill(pid, signal.SIGKILL)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def start_hub(
    folder: Path,
    *,
    s3: S3Server,
    bucket: str,
    users: Iterable[str],
    proxy: str,
    timeout: float = 60.0,
    start_timeout: float = 90.0,
    attempts: int = 3,
) -> Hub:
    """Start JupyterHub in ``folder`` (its database, cookie secret, config, log, and each
    user's home) with ``users`` allowed, their servers on ``bucket`` of ``s3`` under
    ``users/{username}``; ready when the proxy answers ``/hub/health``. A port picked as
    free but taken meanwhile (the hub's or its proxy's) is tried again with new ports, in
    a folder emptied first."""
    users = sorted(users)
    for attempt in range(1, attempts + 1):
        try:
            return _start_hub_once(
                folder,
                s3=s3,
                bucket=bucket,
                users=users,
                proxy=proxy,
                timeout=timeout,
                start_timeout=start_timeout,
            )
        except HubStartError as err:
            if attempt == attempts or _PORT_TAKEN not in str(err).lower():
                raise
            shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


class HubStartError(RuntimeError):
    """The hub exited while starting, or was not ready in time (its log's end in the
    message)."""


def _start_hub_once(
    folder: Path,
    *,
    s3: S3Server,
    bucket: str,
    users: list[str],
    proxy: str,
    timeout: float,
    start_timeout: float,
) -> Hub:
    folder.mkdir(parents=True, exist_ok=True)
    public_port, api_port, hub_port = free_ports(3)
    admin_token = secrets.token_hex(24)
    password = secrets.token_urlsafe(18)
    # What the test environment needs besides docs/jupyterhub.md's set-up, as
    # tests/support/jupyter_procs.py starts JupyterLab: real-time collaboration and jupytext
    # (both installed with the test extra, on by default) off.
    singleuser_args = [
        "--YDocExtension.disable_rtc=True",
        "--ServerApp.jpserver_extensions=jupyterlab_jupytext=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # SimpleLocalProcessSpawner runs the servers as the hub's user: root in CI.
        singleuser_args.append("--allow-root")
    server_config = folder / "etc-jupyter" / "jupyter_server_config.py"
    server_config.parent.mkdir(parents=True, exist_ok=True)
    server_config.write_text(SERVER_CONFIG)
    settings = {
        "folder": str(folder),
        "public_url": f"http://{LOOPBACK}:{public_port}/",
        "hub_url": f"http://{LOOPBACK}:{hub_port}",
        "proxy_api_url": f"http://{LOOPBACK}:{api_port}",
        "proxy": proxy,
        "users": users,
        "ip": LOOPBACK,
        "cmd": [sys.executable, "-m", "jupyterhub.singleuser"],
        "args": singleuser_args,
        "start_timeout": int(start_timeout),
        "environment": {
            # docs/jupyterhub.md's singleuser.extraEnv (Zero to JupyterHub gives it to the
            # spawner's environment as this does), for SeaweedFS
            "JPY_S3_BUCKET": bucket,
            "JPY_S3_ENDPOINT_URL": s3.endpoint_url,
            "JPY_S3_REGION_NAME": s3.region_name,
            "JPY_S3_PREFIX": PREFIX_TEMPLATE,
            # and its extraFiles: a Jupyter config folder with SERVER_CONFIG in it
            "JUPYTER_CONFIG_PATH": str(server_config.parent),
            "JUPYTER_PLATFORM_DIRS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "NO_PROXY": f"{LOOPBACK},localhost",
        },
    }
    config = folder / "jupyterhub_config.py"
    config.write_text(_CONFIG.format(settings=settings, log=_SINGLEUSER_LOG))
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JPY_", "JPYNB_", "JUPYTER", "S3CONTENTS_", "CONFIGPROXY_"))
    }
    env.update(
        S3C_HUB_PROXY_TOKEN=secrets.token_hex(24),
        S3C_HUB_USER_PASSWORD=password,
        S3C_HUB_ADMIN_TOKEN=admin_token,
        S3C_HUB_S3_KEY=s3.access_key_id,
        S3C_HUB_S3_SECRET=s3.secret_access_key,
        JUPYTER_PLATFORM_DIRS="1",
    )
    log_path = folder / "jupyterhub.log"
    log_file = log_path.open("ab")
    hub = Hub(
        url=f"http://{LOOPBACK}:{public_port}",
        folder=folder,
        admin_token=admin_token,
        password=password,
        log_path=log_path,
        _log_file=log_file,
    )
    try:
        hub.process = spawn(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)], env, log_file, cwd=folder
        )
        deadline = time.monotonic() + timeout
        with hub.session() as session:
            while True:
                if hub.process is not None and hub.process.poll() is not None:
                    raise HubStartError(
                        f"jupyterhub exited with code {hub.process.returncode} while "
                        f"starting:\n{hub.log_tail()}"
                    )
                if _PORT_TAKEN in hub.log().lower():
                    # The proxy does not make the hub exit when it cannot listen.
                    raise HubStartError(f"a port was taken:\n{hub.log_tail()}")
                with contextlib.suppress(requests.RequestException):
                    if session.get(f"{hub.url}/hub/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise HubStartError(
                        f"jupyterhub not ready after {timeout:.0f}s:\n{hub.log_tail()}"
                    )
                time.sleep(0.2)
    except BaseException:
        hub.stop()
        raise
    return hub


def as_json(response: requests.Response) -> Any:
    """The answer's JSON, or its text when it is not JSON (a hub's HTML error page)."""
    try:
        return response.json()
    except ValueError:
        return response.text
