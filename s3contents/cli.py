"""The ``s3contents`` command.

``s3contents lab [--bucket B] [--prefix P] [--endpoint-url U] [--s3-port N] [Jupyter
options...]`` starts JupyterLab with ``S3ContentsManager``. With no bucket configured anywhere
(no flag, no ``JPY_S3_BUCKET``, no Jupyter config naming one, and no endpoint either) it
starts an embedded local S3 server (SeaweedFS, data kept under
``~/.local/share/s3contents/seaweedfs``, S3 API on 127.0.0.1:8333 unless ``--s3-port`` or
``S3CONTENTS_S3_PORT`` says otherwise), creates the bucket, points the manager at it, prints
how to reach it, and stops it when JupyterLab exits. A configured endpoint that is the
embedded server's own (as ``eval "$(s3contents env)"`` sets it) starts it too.

``s3contents env`` prints the embedded server's settings as ``export`` lines (for a shell,
boto3, the AWS CLI). ``s3contents doctor`` checks a configuration step by step; with nothing
configured it checks the embedded server while it runs.

Importing this module imports no Jupyter, traitlets or botocore module (``--help`` is fast):
each command imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

__all__ = ["env_block", "main"]

_BUCKET_ENV = ("JPY_S3_BUCKET", "JPYNB_S3_BUCKET")
_ENDPOINT_ENV = ("JPY_S3_ENDPOINT_URL", "JPYNB_S3_ENDPOINT_URL")
_KEY_ENV = {
    "access_key_id": ("JPY_S3_ACCESS_KEY_ID", "JPYNB_S3_ACCESS_KEY_ID"),
    "secret_access_key": ("JPY_S3_SECRET_ACCESS_KEY", "JPYNB_S3_SECRET_ACCESS_KEY"),
}
_CONFIG_NAMES = ("jupyter_server_config", "jupyter_lab_config", "jupyter_notebook_config")
# The same values as s3contents.embedded's, which is not imported for --help.
_DEFAULT_S3_PORT = 8333
_S3_PORT_ENV = "S3CONTENTS_S3_PORT"
_EMBEDDED_BUCKET = "notebooks"


def load_config(
    extra_args: Sequence[str] = (), sources: dict[tuple[str, str], str] | None = None
) -> Any:
    """Jupyter's configuration as a server would see it: config files, then options.

    ``sources``, when given, receives where each ``(section, name)`` was set last: "the
    Jupyter config file <path>" or "the command line (--Section.name)".
    """
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import (
        JSONFileConfigLoader,
        KVArgParseConfigLoader,
        PyFileConfigLoader,
    )

    def note(loaded: Any, where: str) -> None:
        if sources is None:
            return
        for section, values in loaded.items():
            if hasattr(values, "keys"):
                for name in values:
                    sources[(section, name)] = where.format(f"--{section}.{name}")

    config = Config()
    # jupyter_config_path() lists the most specific folder first: load in reverse so it wins.
    for folder in reversed(jupyter_config_path()):
        for name in _CONFIG_NAMES:
            for loader_cls, ext in ((PyFileConfigLoader, ".py"), (JSONFileConfigLoader, ".json")):
                path = os.path.join(folder, name + ext)
                if not os.path.isfile(path):
                    continue
                try:
                    loaded = loader_cls(name + ext, path=folder).load_config()
                except Exception as err:
                    print(f"s3contents: ignoring {path}: {err}", file=sys.stderr)
                    continue
                config.merge(loaded)
                note(loaded, f"the Jupyter config file {path}")
    options = [a for a in extra_args if a.startswith("--") and "." in a.split("=", 1)[0]]
    if options:
        loaded = KVArgParseConfigLoader(argv=options).load_config()
        config.merge(loaded)
        note(loaded, "the command line ({})")
    return config


def _configured(config: Any, name: str, env: Sequence[str]) -> str | None:
    """A storage setting named by the environment or Jupyter's configuration, if any."""
    for var in env:
        if os.environ.get(var):
            return os.environ[var]
    for section in ("S3ContentsManager", "GCSContentsManager"):
        if section in config and config[section].get(name):
            return str(config[section][name])
    return None


def _embedded_endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _same_endpoint(a: str, b: str) -> bool:
    """Do two endpoint URLs name the same loopback server (127.0.0.1 or localhost)?"""
    pa, pb = urlparse(a.strip()), urlparse(b.strip())
    local = {"127.0.0.1", "localhost"}
    try:
        return (
            pa.scheme == pb.scheme
            and pa.port == pb.port
            and pa.hostname in local
            and pb.hostname in local
            and pa.path.strip("/") == pb.path.strip("/")
        )
    except ValueError:  # a port that is not a number
        return False


def _embedded_reason(bucket: str | None, endpoint: str | None, embedded_url: str) -> str | None:
    """Why ``lab`` (and ``doctor``) use the embedded server, or None when they do not."""
    if not bucket and not endpoint:
        return "no bucket configured"
    if endpoint and _same_endpoint(endpoint, embedded_url):
        return f"the endpoint configured ({endpoint}) is the embedded server's"
    return None


def env_block(endpoint_url: str, access_key_id: str, secret_access_key: str, bucket: str) -> str:
    """``export`` lines that reach the embedded server: the AWS SDKs' and CLI's variables
    (``AWS_ENDPOINT_URL_S3`` applies to S3 clients only) and the contents manager's."""
    import shlex

    pairs = (
        ("AWS_ACCESS_KEY_ID", access_key_id),
        ("AWS_SECRET_ACCESS_KEY", secret_access_key),
        ("AWS_ENDPOINT_URL_S3", endpoint_url),
        ("JPY_S3_ENDPOINT_URL", endpoint_url),
        ("JPY_S3_BUCKET", bucket),
    )
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in pairs)


def _run(cmd: list[str], env: dict[str, str]) -> int:
    """Run JupyterLab until it exits. It runs in a session of its own, so a Ctrl-C in the
    terminal reaches only this command, which stops it with SIGTERM: Jupyter's stop without
    a question, kernels shut down (its own SIGINT handler would ask "Shut down this Jupyter
    server (y/[n])?" and go on after 5 s). SIGTERM and SIGHUP do the same; a second signal,
    or 30 s without stopping, kills it."""
    import signal
    import subprocess
    import threading

    from .embedded import die_with_parent

    # JupyterLab gets SIGTERM if this command is killed outright (no orphan server).
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    received: list[int] = []

    def kill() -> None:
        if proc.poll() is None:
            proc.kill()

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        if proc.poll() is not None:
            return
        if len(received) == 1:
            print(
                "\ns3contents: stopping JupyterLab, its kernels and the S3 server "
                "(Ctrl-C again to kill JupyterLab at once)",
                file=sys.stderr,
                flush=True,
            )
            proc.send_signal(signal.SIGTERM)
            timer = threading.Timer(30.0, kill)
            timer.daemon = True
            timer.start()
        else:
            kill()

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    try:
        return proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


def cmd_lab(args: argparse.Namespace, extra: list[str]) -> int:
    import importlib.util

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

    config = load_config(extra)
    bucket = args.bucket or _configured(config, "bucket", _BUCKET_ENV)
    endpoint = args.endpoint_url or _configured(config, "endpoint_url", _ENDPOINT_ENV)
    reason = _embedded_reason(bucket, endpoint, _embedded_endpoint(args.s3_port))
    server = None
    try:
        if reason is not None:
            from .embedded import (
                S3_PORT_ENV,
                EmbeddedServerError,
                PortInUse,
                ensure_bucket,
                start_embedded,
            )

            bucket = bucket or _EMBEDDED_BUCKET
            try:
                server = start_embedded(s3_port=args.s3_port)
                ensure_bucket(server, bucket)
            except PortInUse as err:
                print(
                    f"s3contents: {err}: choose another port for the embedded S3 server with "
                    f"--s3-port PORT (or {S3_PORT_ENV}=PORT)",
                    file=sys.stderr,
                )
                return 2
            except EmbeddedServerError as err:
                print(f"s3contents: {err}", file=sys.stderr)
                return 2
            block = env_block(
                server.endpoint_url, server.access_key_id, server.secret_access_key, bucket
            )
            print(
                f"s3contents: {reason}: using an embedded local S3 server (SeaweedFS)\n"
                f"  endpoint:    {server.endpoint_url}   bucket: {bucket}\n"
                f"  data:        {server.data_dir}\n"
                f"  credentials: {server.credentials_file}\n"
                '  From a shell, boto3 or the AWS CLI (or: eval "$(s3contents env)"):\n'
                + "".join(f"    {line}\n" for line in block.splitlines())
                + "  Ctrl-C stops JupyterLab, its kernels and this server.\n",
                flush=True,
            )
            # Credentials go through the environment, never the command line (ps shows it).
            env["JPY_S3_ACCESS_KEY_ID"] = server.access_key_id
            env["JPY_S3_SECRET_ACCESS_KEY"] = server.secret_access_key
            jupyter_args += [
                f"--S3ContentsManager.bucket={bucket}",
                f"--S3ContentsManager.endpoint_url={server.endpoint_url}",
            ]
        return _run([sys.executable, "-m", "jupyterlab", *jupyter_args], env)
    finally:
        if server is not None:
            server.stop()
            print("s3contents: embedded S3 server stopped", flush=True)


def cmd_env(args: argparse.Namespace, extra: list[str]) -> int:
    from .embedded import embedded_data_dir, embedded_info

    if extra:
        print(f"s3contents env: unexpected arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    info = embedded_info()
    if info is None:
        print(
            f"s3contents: the embedded S3 server has not run with data in "
            f"{embedded_data_dir()} yet: start it with 's3contents lab'",
            file=sys.stderr,
        )
        return 1
    state = f"running (s3contents lab, pid {info.pid})" if info.running else "not running"
    print(
        f"# s3contents: embedded S3 server, {state}; data {info.data_dir}, "
        f"credentials {info.credentials_file}"
    )
    print(env_block(info.endpoint_url, info.access_key_id, info.secret_access_key, info.bucket))
    if not info.running:
        print(
            f"s3contents: the embedded S3 server is not running: 's3contents lab' starts it "
            f"again ({info.endpoint_url} unless --s3-port says otherwise)",
            file=sys.stderr,
        )
    return 0


def _setting_source(section: str, name: str, sources: dict[tuple[str, str], str]) -> str:
    if (section, name) in sources:
        return sources[(section, name)]
    for var in _KEY_ENV.get(name, ()):
        if os.environ.get(var):
            return f"environment variable {var}"
    return "the configuration"


def _credentials_from(cm: Any, sources: dict[tuple[str, str], str]) -> str | None:
    """Where the manager's explicit keys came from, in words (None: not explicit)."""
    if not getattr(cm, "access_key_id", None):
        return None
    key = _setting_source("S3ContentsManager", "access_key_id", sources)
    secret = _setting_source("S3ContentsManager", "secret_access_key", sources)
    if key.startswith("environment variable ") and secret.startswith("environment variable "):
        return f"environment variables {key.rsplit(' ', 1)[1]} and {secret.rsplit(' ', 1)[1]}"
    if key == secret or key.startswith("the command line"):
        return key if key == secret else f"{key} and {secret}"
    return f"{key} (key id) and {secret} (secret)"


def _doctor_manager(
    args: argparse.Namespace, extra: list[str]
) -> tuple[Any, str, list[str], str | None]:
    """The contents manager the options and configuration describe (S3 unless GCS is named),
    the configuration section, notes on what is checked, and where the keys came from."""
    sources: dict[tuple[str, str], str] = {}
    config = load_config(extra, sources)
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
            sources[(section, name)] = "the command line"
    notes: list[str] = []
    credentials_from = None
    if not use_gcs:
        from .embedded import embedded_data_dir, embedded_info

        info = embedded_info()
        bucket = args.bucket or _configured(config, "bucket", _BUCKET_ENV)
        endpoint = args.endpoint_url or _configured(config, "endpoint_url", _ENDPOINT_ENV)
        embedded_url = info.endpoint_url if info else _embedded_endpoint(_s3_port_default())
        reason = _embedded_reason(bucket, endpoint, embedded_url)
        if reason is not None and info is not None and info.running:
            notes.append(
                f"{reason}: checking the embedded S3 server of s3contents lab (running, "
                f"pid {info.pid}; data {info.data_dir})"
            )
            # As 'lab' runs it: its bucket and endpoint, the keys of its credentials file
            # (passed in the environment, where Jupyter configuration still wins).
            section_config = config["S3ContentsManager"]
            section_config["bucket"] = bucket or info.bucket
            section_config["endpoint_url"] = info.endpoint_url
            if ("S3ContentsManager", "access_key_id") not in sources:
                section_config["access_key_id"] = info.access_key_id
                section_config["secret_access_key"] = info.secret_access_key
                credentials_from = f"the embedded server's credentials file {info.credentials_file}"
        elif reason is not None:
            where = info.data_dir if info else embedded_data_dir()
            if endpoint:
                notes.append(
                    f"{endpoint} is the embedded S3 server of s3contents lab, which is not "
                    f"running (data {where}): start 's3contents lab' first"
                )
            else:
                notes.append(
                    "nothing configured, and the embedded S3 server of s3contents lab is not "
                    f"running (data {where}): checking bucket 'notebooks' on AWS. Start "
                    "'s3contents lab' to check the embedded server, or name a bucket "
                    "(--bucket, JPY_S3_BUCKET, c.S3ContentsManager.bucket)"
                )
    if use_gcs:
        from .gcs import GCSContentsManager as cls
    else:
        from .s3 import S3ContentsManager as cls  # type: ignore[assignment]
    cm = cls(config=config)
    if credentials_from is None and not use_gcs:
        credentials_from = _credentials_from(cm, sources)
    return cm, section, notes, credentials_from


def _s3_port_default() -> int:
    raw = os.environ.get(_S3_PORT_ENV, "")
    try:
        return int(raw) if raw.strip() else _DEFAULT_S3_PORT
    except ValueError:
        return _DEFAULT_S3_PORT


def cmd_doctor(args: argparse.Namespace, extra: list[str]) -> int:
    import asyncio
    import logging

    from .doctor import FAIL, OK, Check, run_checks

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        cm, section, notes, credentials_from = _doctor_manager(args, extra)
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
        f"s3contents doctor: {section} on {cm.storage.url} at {cm.storage.endpoint}"
        + (f", prefix {prefix!r}" if prefix else "")
    )
    for line in notes:
        print(f"  {line}")
    print(Check("configuration", OK, "parsed").render())

    async def run() -> list[Check]:
        try:
            return await run_checks(cm, credentials_from=credentials_from)
        finally:
            await cm.close()

    checks = asyncio.run(run())
    for check in checks:
        print(check.render())
    return 1 if any(c.status == FAIL for c in checks) else 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3contents",
        description="Jupyter on object storage. Options not listed here go to Jupyter.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser(
        "lab",
        help="start JupyterLab on a bucket (an embedded local S3 server if none is configured)",
        description="Start JupyterLab with S3ContentsManager. Other options go to JupyterLab. "
        "With no bucket (and no endpoint) configured, an embedded S3 server (SeaweedFS) on "
        "127.0.0.1 holds the notebooks, in bucket 'notebooks'.",
    )
    lab.add_argument("--bucket", help="bucket name (default: configured, else embedded server)")
    lab.add_argument("--prefix", help="key prefix inside the bucket")
    lab.add_argument("--endpoint-url", help="S3 endpoint of an S3-compatible server")
    raw_port = os.environ.get(_S3_PORT_ENV)
    lab.add_argument(
        "--s3-port",
        type=_port,
        default=raw_port if raw_port else _DEFAULT_S3_PORT,
        metavar="PORT",
        help=f"port of the embedded S3 server on 127.0.0.1 (default: ${_S3_PORT_ENV}, "
        f"else {_DEFAULT_S3_PORT})",
    )
    sub.add_parser(
        "env",
        help="print the embedded S3 server's settings as shell 'export' lines",
        description="Print how to reach the embedded S3 server of 's3contents lab' (endpoint, "
        "credentials, bucket) as shell 'export' lines, for boto3, the AWS CLI and Jupyter: "
        'eval "$(s3contents env)". Read from its data folder; works after it stopped too.',
    )
    doctor = sub.add_parser(
        "doctor",
        help="check credentials, bucket and permissions, and say how to fix what fails",
        description="Check the configured bucket step by step (Jupyter config files, "
        "environment and these options, as 'lab' sees them). With nothing configured, check "
        "the embedded S3 server of 's3contents lab' while it runs.",
    )
    doctor.add_argument("--bucket", help="bucket name")
    doctor.add_argument("--prefix", help="key prefix inside the bucket")
    doctor.add_argument("--endpoint-url", help="endpoint of an S3-compatible server or emulator")
    doctor.add_argument("--gcs", action="store_true", help="check GCSContentsManager settings")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    commands = {"lab": cmd_lab, "env": cmd_env, "doctor": cmd_doctor}
    try:
        return commands[args.command](args, extra)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
