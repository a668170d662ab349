"""``s3contents lab`` on its embedded S3 server, as a newcomer runs it, and ``s3contents env``.

Every test runs the command as a subprocess with HOME, the XDG folders and Jupyter's folders
in its own temporary directory, a free Jupyter port and a free ``--s3-port``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest

from s3contents import embedded
from tests.support.servers import free_ports

TOKEN = "t0k"


def _isolated_env(tmp: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any storage setting, every per-user folder in
    ``tmp`` (no config, data or kernels of the user's)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JPY_S3_", "JPYNB_S3_", "JPY_GCS_", "JPYNB_GCS_"))
        and k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        and k not in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", embedded.S3_PORT_ENV)
    }
    home = tmp / "home"
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        IPYTHONDIR=str(home / ".ipython"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def _data_dir(tmp: Path) -> Path:
    return tmp / "home/.local/share/s3contents/seaweedfs"


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3contents.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _exports(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of ``text`` (indented or not), as a shell reads them."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*export (\w+)=(.*)", line)
        if match:
            found[match.group(1)] = shlex.split(match.group(2))[0]
    return found


def _api(port: int, path: str, method: str = "GET", body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{path}",
        data=data,
        method=method,
        headers={"Authorization": f"token {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Lab:
    """``s3contents lab --no-browser`` running as a subprocess; its output is collected."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port, self.s3_port = free_ports(2)
        self.env = env or _isolated_env(tmp)
        (tmp / "home").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "s3contents.cli",
                "lab",
                "--no-browser",
                f"--port={self.port}",
                f"--s3-port={self.s3_port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={TOKEN}",
                *args,
            ],
            env=self.env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, as a terminal's foreground job: a signal sent to the
            # group is what a Ctrl-C in that terminal sends.
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _api(self.port, "contents")
                return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"JupyterLab did not answer:\n{self.output}")
            time.sleep(0.5)

    def jupyter_pid(self) -> int:
        (pid,) = [p for p in _children(self.proc.pid) if "-m jupyterlab" in _cmdline(p)]
        return pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its children get the parent-death signal
        self.proc.wait()
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self, timeout: float = 60) -> int:
        """One SIGINT to its process group, as one Ctrl-C in its terminal."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        return code


def test_importing_the_command_loads_no_server_code() -> None:
    """``s3contents --help`` stays fast: the command module imports neither Jupyter Server,
    traitlets nor botocore (they cost 2 s); each command imports what it needs."""
    code = (
        "import sys, s3contents.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'jupyter_server', 'jupyter_core', 'traitlets', 'botocore', 'aiobotocore', 'boto3'}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
    helped = subprocess.run(
        [sys.executable, "-m", "s3contents.cli", "lab", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0
    assert "--s3-port PORT" in helped.stdout
    assert embedded.S3_PORT_ENV in helped.stdout


def test_lab_prints_how_to_reach_its_server_and_stops_at_one_ctrl_c(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    try:
        lab.wait_ready()
        out = lab.output
        settings = _exports(out)
        endpoint = f"http://127.0.0.1:{lab.s3_port}"
        assert settings["AWS_ENDPOINT_URL_S3"] == settings["JPY_S3_ENDPOINT_URL"] == endpoint
        assert settings["JPY_S3_BUCKET"] == "notebooks"
        assert str(_data_dir(tmp_path) / "credentials.json") in out
        saved = json.loads((_data_dir(tmp_path) / "credentials.json").read_text())
        assert settings["AWS_ACCESS_KEY_ID"] == saved["access_key_id"]

        # boto3 with exactly those settings, from the environment alone (as after pasting
        # the export lines into a shell): a put and a list.
        script = (
            "import os, boto3\n"
            "s3 = boto3.client('s3')\n"
            "b = os.environ['JPY_S3_BUCKET']\n"
            "s3.put_object(Bucket=b, Key='from-boto3.txt', Body=b'hello from boto3')\n"
            "print([o['Key'] for o in s3.list_objects_v2(Bucket=b)['Contents']])\n"
        )
        boto_env = _isolated_env(tmp_path, **settings)
        listed = subprocess.run(
            [sys.executable, "-c", script], env=boto_env, capture_output=True, text=True
        )
        assert listed.returncode == 0, listed.stderr
        assert "from-boto3.txt" in listed.stdout
        # ... and Jupyter sees it through the contents API.
        model = _api(lab.port, "contents/from-boto3.txt")
        assert isinstance(model, dict) and model["content"] == "hello from boto3"

        # s3contents env prints the same settings while lab runs.
        env_run = _cli(_isolated_env(tmp_path), "env")
        assert env_run.returncode == 0, env_run.stderr
        assert _exports(env_run.stdout) == settings
        assert f"running (s3contents lab, pid {lab.proc.pid})" in env_run.stdout

        # A notebook opened as JupyterLab opens one: a session with a kernel.
        notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        _api(lab.port, "contents/n.ipynb", "PUT", {"type": "notebook", "content": notebook})
        session = _api(
            lab.port,
            "sessions",
            "POST",
            {
                "path": "n.ipynb",
                "name": "n.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        assert isinstance(session, dict)
        kernel_id = session["kernel"]["id"]
        jupyter = lab.jupyter_pid()
        deadline = time.monotonic() + 60
        while not (kernels := [p for p in _children(jupyter) if kernel_id in _cmdline(p)]):
            assert time.monotonic() < deadline, "the kernel process did not start"
            time.sleep(0.2)
        weed = json.loads((_data_dir(tmp_path) / "server.json").read_text())["weed_pid"]
        started = [jupyter, *kernels, weed]
        assert all(_alive(pid) for pid in started)
        assert "weed" in _cmdline(weed)
    except BaseException:
        lab.kill()
        raise

    # One Ctrl-C: everything it started stops, promptly, without a question.
    began = time.monotonic()
    code = lab.stop(timeout=20)
    took = time.monotonic() - began
    print(f"s3contents lab stopped {took:.1f} s after one SIGINT")
    assert code == 0, lab.output
    assert took < 20
    survivors = [pid for pid in started if _alive(pid)]
    assert survivors == [], f"still running: {[_cmdline(p) for p in survivors]}"
    assert "Shut down this Jupyter server" not in lab.output
    assert "embedded S3 server stopped" in lab.output

    # After it stopped, s3contents env still prints the settings, and says it is not running.
    after = _cli(_isolated_env(tmp_path), "env")
    assert after.returncode == 0
    assert _exports(after.stdout) == settings
    assert "not running" in after.stderr


def test_env_before_the_server_ever_ran(tmp_path: Path) -> None:
    run = _cli(_isolated_env(tmp_path), "env")
    assert run.returncode == 1
    assert run.stdout == ""
    assert "start it with 's3contents lab'" in run.stderr


def test_s3_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, extra_env in (
            ([f"--s3-port={port}"], {}),
            ([], {embedded.S3_PORT_ENV: str(port)}),
        ):
            run = _cli(_isolated_env(tmp_path, **extra_env), "lab", "--no-browser", *args)
            assert run.returncode == 2
            assert run.stdout == ""
            assert run.stderr.strip() == (
                f"s3contents: port {port} on 127.0.0.1 is in use by another program: choose "
                "another port for the embedded S3 server with --s3-port PORT (or "
                f"{embedded.S3_PORT_ENV}=PORT)"
            )
    bad = _cli(_isolated_env(tmp_path), "lab", "--s3-port=70000")
    assert bad.returncode == 2
    assert "--s3-port: not a port number (1-65535): 70000" in bad.stderr


def test_data_layout_is_stable_and_an_old_one_is_migrated(tmp_path: Path) -> None:
    """One master folder whatever the starts, the same endpoint each time, the data kept;
    the layout of earlier versions (a new ``m<port>`` folder per start, on random ports) is
    brought down to one, and its files are still there."""
    data = tmp_path / "seaweedfs"
    data.mkdir()
    key, secret = embedded._credentials(data)

    # Two starts as earlier versions made them: every port random.
    for n in range(2):
        ports = embedded.seaweedfs_ports()
        with (data / "weed.log").open("ab") as log:
            weed = embedded.spawn(
                embedded.seaweedfs_command(embedded.find_weed(), data, ports),
                embedded.seaweedfs_env(key, secret),
                log,
            )
            try:
                server = embedded.EmbeddedS3(
                    f"http://127.0.0.1:{ports['s3.port']}", key, secret, data, weed, log
                )
                url = server.endpoint_url + "/"
                assert embedded.wait_until(
                    # mypy cannot infer a lambda with a default argument
                    weed,
                    lambda u=url: embedded.http_status(u) is not None,  # type: ignore[misc]
                    60,
                )
                embedded.ensure_bucket(server, "notebooks")
                _put(server, f"old-{n}.txt")
            finally:
                embedded.stop_process(weed)
    assert len(embedded._master_folders(data)) == 2

    (s3_port,) = free_ports(1)
    seen = []
    for n in range(2):
        server = embedded.start_embedded(data, s3_port=s3_port)
        try:
            assert server.endpoint_url == f"http://127.0.0.1:{s3_port}"
            # A second server on the same data folder is refused, naming the running one.
            with pytest.raises(embedded.ServerRunning, match="already running"):
                embedded.start_embedded(data, s3_port=s3_port)
            embedded.ensure_bucket(server, "notebooks")
            _put(server, f"new-{n}.txt")
            seen.append(sorted(_keys(server)))
            masters = embedded._master_folders(data)
            assert len(masters) == 1
            # Its folder is the one of this start's master port.
            (master_port,) = masters
            assert f"-master.port={master_port}" in " ".join(cast(list[str], server.process.args))
        finally:
            server.stop()
    assert seen == [
        ["new-0.txt", "old-0.txt", "old-1.txt"],
        ["new-0.txt", "new-1.txt", "old-0.txt", "old-1.txt"],
    ]
    info = embedded.embedded_info(data)
    assert info is not None and not info.running
    assert info.endpoint_url == f"http://127.0.0.1:{s3_port}"


def _client(server: embedded.EmbeddedS3) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name="us-east-1",
    )


def _put(server: embedded.EmbeddedS3, key: str) -> None:
    client = _client(server)
    client.put_object(Bucket="notebooks", Key=key, Body=b"kept")
    client.close()


def _keys(server: embedded.EmbeddedS3) -> list[str]:
    client = _client(server)
    listed = client.list_objects_v2(Bucket="notebooks")
    client.close()
    return [o["Key"] for o in listed.get("Contents", [])]


def test_doctor_checks_the_embedded_server_while_it_runs(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    before = _cli(env, "doctor")
    assert "the embedded S3 server of s3contents lab is not running" in before.stdout
    assert before.returncode == 1

    data = _data_dir(tmp_path)
    (s3_port,) = free_ports(1)
    server = embedded.start_embedded(data, s3_port=s3_port)
    try:
        embedded.ensure_bucket(server, "notebooks")
        run = _cli(env, "doctor")
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"S3ContentsManager on s3://notebooks at http://127.0.0.1:{s3_port}" in run.stdout
    assert "checking the embedded S3 server of s3contents lab (running" in run.stdout
    credentials = [line for line in run.stdout.splitlines() if "] credentials" in line]
    assert credentials == [
        f"[ ok ] credentials        access key {server.access_key_id[:4]}…"
        f"{server.access_key_id[-2:]} from the embedded server's credentials file "
        f"{data / 'credentials.json'}: accepted"
    ]
    assert server.secret_access_key not in run.stdout + run.stderr
