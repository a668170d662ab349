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


def load_config(extra_args: Sequence[str] = ()) -> Any:
    """Jupyter's configuration as a server would see it: config files, then options."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import (
        JSONFileConfigLoader,
        KVArgParseConfigLoader,
        PyFileConfigLoader,
    )

    config = Config()
    # jupyter_config_path() lists the most specific folder first: load in reverse so it wins.
    for folder in reversed(jupyter_config_path()):
        for name in _CONFIG_NAMES:
            for loader_cls, ext in ((PyFileConfigLoader, ".py"), (JSONFileConfigLoader, ".json")):
                if not os.path.isfile(os.path.join(folder, name + ext)):
                    continue
                try:
                    config.merge(loader_cls(name + ext, path=folder).load_config())
                except Exception as err:
                    print(f"s3contents: ignoring {folder}/{name}{ext}: {err}", file=sys.stderr)
    options = [a for a in extra_args if a.startswith("--") and "." in a.split("=", 1)[0]]
    if options:
        config.merge(KVArgParseConfigLoader(argv=options).load_config())
    return config


def _configured_bucket(config: Any) -> str | None:
    """The bucket named by the environment or Jupyter's configuration, if any."""
    for var in _BUCKET_ENV:
        if os.environ.get(var):
            return os.environ[var]
    for section in ("S3ContentsManager", "GCSContentsManager"):
        if section in config and config[section].get("bucket"):
            return str(config[section]["bucket"])
    return None


def _run(cmd: list[str], env: dict[str, str]) -> int:
    """Run JupyterLab in the foreground until it exits; forward termination signals."""
    from .embedded import die_with_parent

    # JupyterLab gets SIGTERM if this command is killed outright (no orphan server).
    proc = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent)

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                # Pass it on (a terminal's Ctrl-C reaches JupyterLab too; a second one makes
                # it stop at once instead of asking), and wait for it to stop.
                forward(signal.SIGINT, None)
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
    if not args.bucket and not _configured_bucket(load_config(extra)):
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


def _doctor_manager(args: argparse.Namespace, extra: list[str]) -> tuple[Any, str]:
    """The contents manager the options and configuration describe (S3 unless GCS is named)."""
    config = load_config(extra)
    cm_class = str(config.get("ServerApp", {}).get("contents_manager_class", ""))
    use_gcs = args.gcs or "gcs" in cm_class.lower() or "GCSContentsManager" in config
    section = "GCSContentsManager" if use_gcs else "S3ContentsManager"
    for name, value in (
        ("bucket", args.bucket),
        ("prefix", args.prefix),
        ("endpoint_url", args.endpoint_url),
    ):
        if value:
            config[section][name] = value
    if use_gcs:
        from .gcs import GCSContentsManager as cls
    else:
        from .s3manager import S3ContentsManager as cls  # type: ignore[assignment]
    return cls(config=config), section


def cmd_doctor(args: argparse.Namespace, extra: list[str]) -> int:
    import asyncio
    import logging

    from .doctor import FAIL, OK, Check, run_checks

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        cm, section = _doctor_manager(args, extra)
    except Exception as err:
        print(
            Check(
                "configuration",
                FAIL,
                f"{type(err).__name__}: {err}",
                "see 'jupyter server --help-all' for the settings and their types",
            ).render()
        )
        return 1
    prefix = cm.keys.prefix
    print(
        f"s3contents doctor: {section} on {cm.storage.url}"
        + (f", prefix {prefix!r}" if prefix else "")
    )
    print(Check("configuration", OK, "parsed").render())

    async def run() -> list[Check]:
        try:
            return await run_checks(cm)
        finally:
            await cm.close()

    checks = asyncio.run(run())
    for check in checks:
        print(check.render())
    return 1 if any(c.status == FAIL for c in checks) else 0


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
    doctor = sub.add_parser(
        "doctor",
        help="check credentials, bucket and permissions, and say how to fix what fails",
        description="Check the configured bucket step by step (Jupyter config files, "
        "environment and these options, as 'lab' sees them).",
    )
    doctor.add_argument("--bucket", help="bucket name")
    doctor.add_argument("--prefix", help="key prefix inside the bucket")
    doctor.add_argument("--endpoint-url", help="endpoint of an S3-compatible server or emulator")
    doctor.add_argument("--gcs", action="store_true", help="check GCSContentsManager settings")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "lab":
        return cmd_lab(args, extra)
    if args.command == "doctor":
        return cmd_doctor(args, extra)
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
