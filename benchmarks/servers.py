"""The contents managers under test: their Python environments and Jupyter Servers.

``new`` is this repository's package, run by the interpreter running the benchmark (the repo's
``.venv``).  ``old`` is ``s3contents==0.13.0`` from PyPI, which needs Python >= 3.12; it gets a
venv of its own under ``benchmarks/.work/old-venv``, created on first use and reused after.
``gcs`` and ``gcs-old`` are the same two packages' ``GCSContentsManager``.  The old one has no
endpoint setting: it reaches the emulator through gcsfs's ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .gcs import PROJECT as GCS_PROJECT
from .local import MANAGER as LOCAL_MANAGER
from .procs import stop_process
from .storage import ACCESS_KEY, SECRET_KEY, free_ports

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
OLD_VENV = WORK / "old-venv"
OLD_REQUIREMENTS = ["s3contents==0.13.0", "jupyter_server"]  # gcsfs comes with it
# Written last when the old venv is complete, so an interrupted install is redone.
_STAMP = ".benchmarks-ready"


@dataclass
class Package:
    """One contents manager implementation to benchmark."""

    name: str  # "new", "old", "gcs", "gcs-old" or "local"
    python: str
    bucket: str
    # Environment overrides for the server process (None removes a variable).
    env: dict[str, str | None] = field(default_factory=dict)
    backend: str = "s3"  # or "gcs", or "local" (jupyter_server's own manager on disk)
    old: bool = False  # s3contents 0.13

    @property
    def marker(self) -> str:
        """The folder marker both packages write and expect for this backend."""
        return {"gcs": ".gcskeep", "local": ".keep"}.get(self.backend, ".s3keep")

    def gcs(self) -> Package:
        """The same package's GCS contents manager."""
        name = "gcs-old" if self.old else "gcs"
        return Package(name, self.python, f"{self.bucket}-gcs", dict(self.env), "gcs", self.old)

    def facts(self) -> dict[str, str]:
        """Versions of the interpreter and the packages that matter, from its environment."""
        code = (
            "import json, platform\n"
            "from importlib import metadata\n"
            "out = {'python': platform.python_version()}\n"
            f"for d in {self._dists()!r}:\n"
            "    try:\n"
            "        out[d] = metadata.version(d)\n"
            "    except metadata.PackageNotFoundError:\n"
            "        pass\n"
            "print(json.dumps(out))\n"
        )
        out = subprocess.run(
            [self.python, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=_server_env(self.env, Path(os.devnull)),
            cwd=WORK,
        )
        facts = json.loads(out.stdout)
        if not self.old and "s3contents" in facts:
            facts["s3contents"] += f" ({_git_state()})"
        return facts

    def _dists(self) -> tuple[str, ...]:
        if self.backend == "local":
            return ("jupyter_server",)
        if self.backend == "gcs":
            return ("s3contents", "jupyter_server", "gcsfs", "aiohttp")
        return ("s3contents", "jupyter_server", "aiobotocore", "botocore", "s3fs")


def _git_state() -> str:
    """The checkout measured: commit, and whether ``s3contents/`` differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "s3contents"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"git {commit}" + (" with uncommitted changes in s3contents/" if dirty else "")


def _find_python312(explicit: str | None) -> str:
    """A working Python 3.12+ interpreter: ``explicit``, ``python3.12`` on PATH, or pyenv's."""
    candidates = [explicit] if explicit else []
    candidates += [shutil.which("python3.12") or "", shutil.which("python3.13") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    # A pyenv shim on PATH fails when 3.12 is installed but not selected; use the real one.
    for pattern in ("3.12*/bin/python3.12", "3.13*/bin/python3.13"):
        candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", pattern)))
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    raise RuntimeError("s3contents 0.13.0 needs Python >= 3.12: none found (try --old-python)")


def ensure_old_venv(explicit_python: str | None = None, log=print) -> str:
    """Create (once) the venv with the PyPI package; return its interpreter."""
    python = OLD_VENV / "bin" / "python"
    if (OLD_VENV / _STAMP).exists() and python.exists():
        return str(python)
    base = _find_python312(explicit_python)
    log(f"creating {OLD_VENV.relative_to(REPO)} with {base} (first run only)")
    shutil.rmtree(OLD_VENV, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run([base, "-m", "venv", str(OLD_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # Captured: pip is chatty, and only its failure is of interest here.
    out = subprocess.run([*pip, *OLD_REQUIREMENTS], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pip install {OLD_REQUIREMENTS} failed:\n{out.stderr[-3000:]}")
    (OLD_VENV / _STAMP).write_text("\n".join(OLD_REQUIREMENTS) + "\n")
    return str(python)


def new_package() -> Package:
    """The package in this repository, run with the benchmark's own interpreter."""
    # The server runs in a scratch directory, so the package must come from the
    # environment (editable install); PYTHONPATH also covers a not-yet-installed checkout.
    return Package("new", sys.executable, "bench-new", env={"PYTHONPATH": str(REPO)})


def old_package(explicit_python: str | None = None, log=print) -> Package:
    # No PYTHONPATH, and a working directory outside the repo: the repo's own
    # s3contents must not shadow the PyPI one.
    return Package("old", ensure_old_venv(explicit_python, log), "bench-old", old=True)


def local_package() -> Package:
    """jupyter_server's ``AsyncLargeFileManager`` on a local folder: the reference."""
    return Package("local", sys.executable, "bench-local", backend="local")


def manager_class(pkg: Package) -> str:
    if pkg.backend == "local":
        return LOCAL_MANAGER
    if pkg.backend == "gcs":
        return "s3contents.gcs.GCSContentsManager"
    return "s3contents.S3ContentsManager"


def check_importable(pkg: Package) -> str | None:
    """None if ``pkg``'s contents manager imports in its environment, else why."""
    WORK.mkdir(parents=True, exist_ok=True)
    module, _, cls = manager_class(pkg).rpartition(".")
    out = subprocess.run(
        [pkg.python, "-c", f"import {module}; {module}.{cls}"],
        capture_output=True,
        text=True,
        env=_server_env(pkg.env, Path(os.devnull)),
        cwd=WORK,
    )
    if out.returncode == 0:
        return None
    return (out.stderr.strip().splitlines() or ["unknown error"])[-1]


# The environment's storage settings and credentials must not reach the servers.
_DROPPED_PREFIXES = ("AWS_", "JPY_", "JUPYTER", "PYTHON", "GOOGLE_", "GCSFS_", "S3CONTENTS")
_DROPPED = ("VIRTUAL_ENV", "STORAGE_EMULATOR_HOST", "CLOUDSDK_CONFIG")


def _server_env(overrides: dict[str, str | None], home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED
    }
    env.update(
        {
            # Only the keys on the command line: no IMDS probe, no ~/.aws.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            # No gcloud configuration, no probe of Google's metadata server.
            "CLOUDSDK_CONFIG": str(home / "gcloud"),
            "NO_GCE_CHECK": "true",
            # Keep the user's Jupyter config out of the measurement.
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class JupyterServer:
    """A running ``jupyter server`` whose contents manager talks to the counting proxy."""

    proc: subprocess.Popen
    url: str
    token: str
    log_path: Path

    def stop(self) -> None:
        stop_process(self.proc)

    def log_tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n:]
        return ""


def start_jupyter(
    pkg: Package,
    endpoint: str,
    prefix: str,
    scratch: Path,
    log_path: Path,
    timeout=90.0,
    root: Path | None = None,
) -> JupyterServer:
    """Start ``pkg``'s Jupyter Server on a free loopback port and wait for ``/api/status``.

    ``root``: the server's root folder (the ``local`` target's files), else a scratch one."""
    (port,) = free_ports(1)
    token = f"bench-{pkg.name}-token"
    root = root or scratch / "root"
    root.mkdir(parents=True, exist_ok=True)
    cls = manager_class(pkg)
    cmd = [
        pkg.python,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",  # harmless when not root; CI and containers often are
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.contents_manager_class={cls}",
        # jupytext (the test extra) wraps any contents manager where it is installed.
        "--ServerApp.jpserver_extensions=jupyterlab_jupytext=False",
    ]
    env = dict(pkg.env)
    if pkg.backend == "local":
        # Deleting a folder removes it, as in a bucket (not into the desktop's trash).
        cmd += [
            "--FileContentsManager.delete_to_trash=False",
            "--FileContentsManager.always_delete_dir=True",
        ]
    elif pkg.backend == "gcs":
        cmd += [
            f"--GCSContentsManager.bucket={pkg.bucket}",
            f"--GCSContentsManager.prefix={prefix}",
            "--GCSContentsManager.token=anon",
            f"--GCSContentsManager.project={GCS_PROJECT}",
        ]
        if pkg.old:
            # s3contents 0.13's GCS manager has no endpoint setting; gcsfs reads this. And
            # without the second variable recent gcsfs probes the bucket type over gRPC,
            # which stalls for about a minute against an emulator.
            env["STORAGE_EMULATOR_HOST"] = endpoint
            env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
        else:
            cmd.append(f"--GCSContentsManager.endpoint_url={endpoint}")
    else:
        cmd += [
            f"--S3ContentsManager.bucket={pkg.bucket}",
            f"--S3ContentsManager.endpoint_url={endpoint}",
            f"--S3ContentsManager.access_key_id={ACCESS_KEY}",
            f"--S3ContentsManager.secret_access_key={SECRET_KEY}",
            f"--S3ContentsManager.prefix={prefix}",
        ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_env(env, scratch),
            # Not the repo (its s3contents would shadow the old one), and the old
            # package keeps checkpoints under its working directory.
            cwd=root,
            start_new_session=True,
        )
    server = JupyterServer(proc, f"http://127.0.0.1:{port}", token, log_path)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: JupyterServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"token {server.token}"}
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"jupyter server exited with {server.proc.returncode}; log tail:\n"
                + server.log_tail()
            )
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{server.url}/api/status", headers=headers, timeout=5).ok:
                return
        time.sleep(0.3)
    raise RuntimeError("jupyter server did not answer /api/status; log tail:\n" + server.log_tail())
