"""The ``s3contents`` command.

``s3contents lab [--bucket B] [--prefix P] [--endpoint-url U] [Jupyter options...]`` starts
JupyterLab with ``S3ContentsManager``. With no bucket configured anywhere (no flag, no
``JPY_S3_BUCKET``, no Jupyter config naming one) it starts an embedded local S3 server
(SeaweedFS, data kept under ``~/.local/share/s3contents``), creates the bucket, points the
manager at it, and stops the server when JupyterLab exits.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

_BUCKET_ENV = ("JPY_S3_BUCKET", "JPYNB_S3_BUCKET")
_CONFIG_NAMES = ("jupyter_server_config", "jupyter_lab_config", "jupyter_notebook_config")


def _configured_bucket(extra_args: Sequence[str]) -> str | None:
    """The bucket named by Jupyter options, environment or config files, if any."""
    for arg in extra_args:
        if arg.startswith("--S3ContentsManager.bucket="):
            return arg.split("=", 1)[1]
    for var in _BUCKET_ENV:
        if os.environ.get(var):
            return os.environ[var]
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    for folder in jupyter_config_path():
        for name in _CONFIG_NAMES:
            for loader_cls, ext in ((PyFileConfigLoader, ".py"), (JSONFileConfigLoader, ".json")):
                if not os.path.isfile(os.path.join(folder, name + ext)):
                    continue
                try:
                    config: Any = loader_cls(name + ext, path=folder).load_config()
                except Exception:  # noqa: S112 - a broken file is Jupyter's to report
                    continue
                section = config.get("S3ContentsManager", {})
                if section.get("bucket"):
                    return str(section["bucket"])
    return None


def _run(cmd: list[str], env: dict[str, str]) -> int:
    """Run JupyterLab in the foreground until it exits; forward termination signals."""
    proc = subprocess.Popen(cmd, env=env)

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                # The terminal sent Ctrl-C to JupyterLab too; it decides, we wait for it.
                continue
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


def cmd_lab(args: argparse.Namespace, extra: list[str]) -> int:
    if importlib.util.find_spec("jupyterlab") is None:
        print("JupyterLab is not installed: pip install 's3contents[lab]'", file=sys.stderr)
        return 2
    env = dict(os.environ)
    jupyter_args = [
        "--ServerApp.contents_manager_class=s3contents.S3ContentsManager",
        *extra,
    ]
    if args.bucket:
        jupyter_args.append(f"--S3ContentsManager.bucket={args.bucket}")
    if args.prefix:
        jupyter_args.append(f"--S3ContentsManager.prefix={args.prefix}")
    if args.endpoint_url:
        jupyter_args.append(f"--S3ContentsManager.endpoint_url={args.endpoint_url}")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        jupyter_args.append("--allow-root")

    server = None
    if not args.bucket and not _configured_bucket(extra):
        from .embedded import EmbeddedServerError, ensure_bucket, start_embedded

        try:
            server = start_embedded()
            ensure_bucket(server, "notebooks")
        except EmbeddedServerError as err:
            if server is not None:
                server.stop()
            print(f"s3contents: {err}", file=sys.stderr)
            return 2
        print(
            "s3contents: no bucket configured: using an embedded local S3 server\n"
            f"  endpoint: {server.endpoint_url}  bucket: notebooks\n"
            f"  data:     {server.data_dir}",
            flush=True,
        )
        # Credentials go through the environment, never the command line (ps shows it).
        env["JPY_S3_ACCESS_KEY_ID"] = server.access_key_id
        env["JPY_S3_SECRET_ACCESS_KEY"] = server.secret_access_key
        jupyter_args += [
            "--S3ContentsManager.bucket=notebooks",
            f"--S3ContentsManager.endpoint_url={server.endpoint_url}",
        ]
    try:
        return _run([sys.executable, "-m", "jupyterlab", *jupyter_args], env)
    finally:
        if server is not None:
            server.stop()
            print("s3contents: embedded S3 server stopped", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3contents",
        description="Jupyter on object storage. Options not listed here go to Jupyter.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser(
        "lab",
        help="start JupyterLab on a bucket (an embedded local S3 server if none is configured)",
        description="Start JupyterLab with S3ContentsManager. Other options go to JupyterLab.",
    )
    lab.add_argument("--bucket", help="bucket name (default: configured, else embedded server)")
    lab.add_argument("--prefix", help="key prefix inside the bucket")
    lab.add_argument("--endpoint-url", help="S3 endpoint of an S3-compatible server")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "lab":
        return cmd_lab(args, extra)
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
