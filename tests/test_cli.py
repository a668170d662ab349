"""The ``s3contents`` command: ``doctor`` against real servers, ``lab`` with its embedded S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import S3Server, free_ports
from tests.support.versions import delete_every_version


def _doctor(
    server: S3Server,
    *args: str,
    secret: str | None = None,
    config_dir: Path | None = None,
    keys: bool = True,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JPY_S3_", "AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))
    }
    if keys:
        env["JPY_S3_ACCESS_KEY_ID"] = server.access_key_id
        env["JPY_S3_SECRET_ACCESS_KEY"] = secret or server.secret_access_key
    env.update(extra_env or {})
    env["JUPYTER_CONFIG_DIR"] = str(config_dir or "/nonexistent")  # no user config
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "s3contents.cli",
            "doctor",
            "--endpoint-url",
            server.endpoint_url,
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(out: str, check: str) -> list[str]:
    """The lines of one check (``[status] name ...``)."""
    return [line for line in out.splitlines() if line[7:].split(" ", 1)[0] == check]


def _statuses(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("["):
            status, rest = line[1:].split("]", 1)
            rows[rest.split()[0]] = status.strip()
    return rows


def test_doctor_all_good_on_seaweedfs(seaweedfs: S3Server) -> None:
    bucket = seaweedfs.make_bucket()
    run = _doctor(seaweedfs, "--bucket", bucket, "--prefix", "some/prefix")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _statuses(run.stdout)
    assert rows == {
        "configuration": "ok",
        "credentials": "ok",
        "endpoint": "ok",
        "bucket": "ok",
        "list": "ok",
        "write": "ok",
        "read": "ok",
        "copy": "ok",
        "conditional": "ok",
        "delete": "ok",
        "uploads": "ok",
        "lifecycle": "warn",  # a new bucket has no rule aborting incomplete uploads
        "history": "ok",  # versioning off: nothing to expire
    }
    # One line for the credentials, naming where they were found, ok once accepted.
    assert _lines(run.stdout, "credentials") == [
        f"[ ok ] credentials        access key {seaweedfs.access_key_id[:4]}…"
        f"{seaweedfs.access_key_id[-2:]} from environment variables JPY_S3_ACCESS_KEY_ID and "
        "JPY_S3_SECRET_ACCESS_KEY: accepted"
    ]
    # The probe was deleted again: nothing is left under the prefix.
    listed = seaweedfs.admin.list_objects_v2(Bucket=bucket, Prefix="some/prefix/")
    assert listed.get("KeyCount", 0) == 0
    assert seaweedfs.secret_access_key not in run.stdout + run.stderr


def test_doctor_reports_incomplete_uploads_and_the_lifecycle_rule(seaweedfs: S3Server) -> None:
    bucket = seaweedfs.make_bucket()
    s3 = seaweedfs.admin
    left = s3.create_multipart_upload(Bucket=bucket, Key="p/left.bin")["UploadId"]
    s3.upload_part(
        Bucket=bucket, Key="p/left.bin", UploadId=left, PartNumber=1, Body=b"x" * (5 << 20)
    )
    s3.create_multipart_upload(Bucket=bucket, Key="elsewhere/y.bin")  # not under the prefix
    time.sleep(2.2)
    timeout = {"S3CONTENTS_UPLOAD_TIMEOUT": "1"}
    run = _doctor(seaweedfs, "--bucket", bucket, "--prefix", "p", extra_env=timeout)
    assert run.returncode == 0, run.stdout + run.stderr
    (uploads,) = _lines(run.stdout, "uploads")
    assert "1 upload(s) left incomplete under 'p/' (nothing for over 1 s)" in uploads
    assert "holding 5.0 MiB in 1 part(s)" in uploads
    lifecycle = run.stdout.split("[warn] lifecycle", 1)[1]
    rule = (
        '{"ID": "s3contents-abort-incomplete-uploads", "Status": "Enabled", "Filter": '
        '{"Prefix": "p/"}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}'
    )
    assert f"put-bucket-lifecycle-configuration --bucket {bucket}" in lifecycle
    assert f"""--lifecycle-configuration '{{"Rules": [{rule}]}}'""" in lifecycle
    # With the rule it prints, the bucket is fine; the upload is still reported.
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration=json.loads(f'{{"Rules": [{rule}]}}')
    )
    run = _doctor(seaweedfs, "--bucket", bucket, "--prefix", "p", extra_env=timeout)
    assert _lines(run.stdout, "lifecycle") == [
        "[ ok ] lifecycle          rule 's3contents-abort-incomplete-uploads' aborts incomplete "
        "multipart uploads under 'p/' 1 day(s) after they begin"
    ]
    assert _statuses(run.stdout)["uploads"] == "warn"
    s3.abort_multipart_upload(Bucket=bucket, Key="p/left.bin", UploadId=left)
    run = _doctor(seaweedfs, "--bucket", bucket, "--prefix", "p", extra_env=timeout)
    assert _lines(run.stdout, "uploads") == [
        "[ ok ] uploads            none left incomplete under 'p/'"
    ]
    seaweedfs.remove_bucket(bucket)


@pytest.mark.parametrize("server_name", ["seaweedfs", "moto_s3"])
def test_doctor_reports_versioning_and_the_noncurrent_rule(
    server_name: str, request: pytest.FixtureRequest
) -> None:
    server: S3Server = request.getfixturevalue(server_name)
    bucket = server.make_bucket()
    s3 = server.admin
    try:
        run = _doctor(server, "--bucket", bucket, "--prefix", "p")
        assert _lines(run.stdout, "history") == [
            "[ ok ] history            versioning off: one checkpoint per file (turn "
            "versioning on to list every save as a checkpoint)"
        ]
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        run = _doctor(server, "--bucket", bucket, "--prefix", "p")
        assert run.returncode == 0, run.stdout + run.stderr
        history = run.stdout.split("[warn] history", 1)[1]
        assert "versioning on, and no lifecycle rule expires noncurrent versions under 'p/'" in (
            history
        )
        assert f"put-bucket-lifecycle-configuration --bucket {bucket}" in history
        config = json.loads(history.split("--lifecycle-configuration '", 1)[1].split("'", 1)[0])
        assert [r["ID"] for r in config["Rules"]] == [
            "s3contents-abort-incomplete-uploads",
            "s3contents-expire-noncurrent-versions",
        ]
        assert config["Rules"][1]["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": 30,
            "NewerNoncurrentVersions": 20,
        }
        # With the rules it prints, both checks pass.
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=config)
        run = _doctor(server, "--bucket", bucket, "--prefix", "p")
        assert _statuses(run.stdout)["lifecycle"] == "ok", run.stdout
        assert _lines(run.stdout, "history") == [
            "[ ok ] history            versioning on: every save is a checkpoint; rule "
            "'s3contents-expire-noncurrent-versions' expires noncurrent versions under 'p/'"
        ], run.stdout
    finally:
        delete_every_version(s3, bucket)
        s3.delete_bucket(Bucket=bucket)


def test_doctor_names_a_missing_bucket(seaweedfs: S3Server) -> None:
    run = _doctor(seaweedfs, "--bucket", "no-such-bucket-here")
    assert run.returncode == 1
    rows = _statuses(run.stdout)
    assert rows["bucket"] == "FAIL"
    assert "'no-such-bucket-here' does not exist" in run.stdout
    assert "fix: create s3://no-such-bucket-here" in run.stdout
    assert "list" not in rows  # nothing is tried beyond a missing bucket


def test_doctor_says_the_credentials_are_wrong(seaweedfs: S3Server) -> None:
    bucket = seaweedfs.make_bucket()
    wrong = "not-the-secret-" + "x" * 20
    run = _doctor(seaweedfs, "--bucket", bucket, secret=wrong)
    assert run.returncode == 1
    assert "rejected the credentials" in run.stdout
    assert wrong not in run.stdout + run.stderr
    assert "write" not in _statuses(run.stdout)
    # One verdict, FAIL, naming where the credentials were found: never ok, then FAIL.
    (line,) = _lines(run.stdout, "credentials")
    assert line.startswith(
        f"[FAIL] credentials        access key {seaweedfs.access_key_id[:4]}…"
        f"{seaweedfs.access_key_id[-2:]} found in environment variables JPY_S3_ACCESS_KEY_ID "
        "and JPY_S3_SECRET_ACCESS_KEY: Access denied"
    ), run.stdout
    assert (
        "fix: the key id or secret found in environment variables JPY_S3_ACCESS_KEY_ID and "
        "JPY_S3_SECRET_ACCESS_KEY is wrong"
    ) in run.stdout


def test_doctor_names_the_config_file_and_the_aws_chain(
    seaweedfs: S3Server, tmp_path: Path
) -> None:
    bucket = seaweedfs.make_bucket()
    config = tmp_path / "jupyter_server_config.py"
    config.write_text(
        f"c.S3ContentsManager.access_key_id = {seaweedfs.access_key_id!r}\n"
        f"c.S3ContentsManager.secret_access_key = {seaweedfs.secret_access_key!r}\n"
    )
    run = _doctor(seaweedfs, "--bucket", bucket, config_dir=tmp_path, keys=False)
    assert run.returncode == 0, run.stdout + run.stderr
    (line,) = _lines(run.stdout, "credentials")
    assert line.endswith(f"from the Jupyter config file {config}: accepted")

    # The AWS chain's environment variables, when nothing else names keys.
    aws = {
        "AWS_ACCESS_KEY_ID": seaweedfs.access_key_id,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_access_key,
    }
    run = _doctor(seaweedfs, "--bucket", bucket, keys=False, extra_env=aws)
    assert run.returncode == 0, run.stdout + run.stderr
    (line,) = _lines(run.stdout, "credentials")
    assert "from the environment (AWS_ACCESS_KEY_ID): accepted" in line


def test_doctor_unreachable_endpoint(seaweedfs: S3Server) -> None:
    (port,) = free_ports(1)
    server = S3Server("closed", f"http://127.0.0.1:{port}", "k" * 16, "s" * 30)
    run = _doctor(server, "--bucket", "whatever")
    assert run.returncode == 1
    assert _statuses(run.stdout)["endpoint"] == "FAIL"
    assert "fix: check endpoint_url" in run.stdout


def test_doctor_reports_conditional_copy_not_honoured_on_moto(moto_s3: S3Server) -> None:
    bucket = moto_s3.make_bucket()
    run = _doctor(moto_s3, "--bucket", bucket)
    # moto ignores If-None-Match on CopyObject: a warning, not a failure.
    assert run.returncode == 0, run.stdout + run.stderr
    assert _statuses(run.stdout)["conditional"] == "warn"
    assert "create-only copy NOT honoured" in run.stdout


def test_doctor_bad_setting_fails_at_configuration(seaweedfs: S3Server) -> None:
    run = _doctor(
        seaweedfs, "--bucket", "b", "--S3ContentsManager.s3fs_additional_kwargs={'Nope': 1}"
    )
    assert run.returncode == 1
    assert _statuses(run.stdout) == {"configuration": "FAIL"}
    assert "Nope" in run.stdout


def _get(url: str, token: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return int(resp.status)


def _weed_pids(data_home: Path) -> list[int]:
    return _pids_with("weed", str(data_home))


def _start_lab(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """``s3contents lab`` with nothing configured, answering on a free port."""
    port, s3_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_S3_", "JPYNB_S3_"))}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jdata")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s3contents.cli",
            "lab",
            "--no-browser",
            f"--port={port}",
            f"--s3-port={s3_port}",
            "--ServerApp.ip=127.0.0.1",
            "--IdentityProvider.token=t0k",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if _get(f"http://127.0.0.1:{port}/api/contents", "t0k") == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, _ = proc.communicate()
            raise AssertionError(f"JupyterLab did not answer:\n{out}")
        time.sleep(0.5)


def _pids_with(*texts: str) -> list[int]:
    """Live processes whose command line holds every one of ``texts``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().split(") ", 1)[1][0]
            except (OSError, IndexError):
                continue
            if all(t in cmdline for t in texts) and state != "Z":
                pids.append(int(entry.name))
    return pids


def test_lab_killed_outright_leaves_no_process(tmp_path: Path) -> None:
    proc, port = _start_lab(tmp_path)
    assert _pids_with(f"--port={port}") and _weed_pids(tmp_path / "data")
    proc.kill()  # SIGKILL: no chance to clean up; the children get the parent-death signal
    proc.communicate()
    deadline = time.monotonic() + 30
    while _pids_with(f"--port={port}") or _weed_pids(tmp_path / "data"):
        assert time.monotonic() < deadline, "JupyterLab or SeaweedFS outlived s3contents lab"
        time.sleep(0.5)


def test_lab_with_nothing_configured_runs_on_an_embedded_server(tmp_path: Path) -> None:
    proc, port = _start_lab(tmp_path)
    try:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/contents/hello.txt",
            data=b'{"type": "file", "format": "text", "content": "kept"}',
            method="PUT",
            headers={"Authorization": "token t0k"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201
        assert _weed_pids(tmp_path / "data")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()  # its SeaweedFS gets SIGTERM when it dies (parent-death signal)
            out, _ = proc.communicate()
            raise
    assert "using an embedded local S3 server" in out
    assert str(tmp_path / "data" / "s3contents" / "seaweedfs") in out
    assert "embedded S3 server stopped" in out
    assert _weed_pids(tmp_path / "data") == []
    # The data stay between runs, under the user's data folder.
    assert (tmp_path / "data" / "s3contents" / "seaweedfs" / "credentials.json").exists()
