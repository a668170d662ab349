"""``s3contents doctor --gcs`` against fake-gcs-server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.support.gcs_server import GCSServer


def test_doctor_on_gcs(gcs_server: GCSServer, gcs_bucket: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_GCS_", "JPYNB_GCS_"))}
    env["JUPYTER_CONFIG_DIR"] = "/nonexistent"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "s3contents.cli",
            "doctor",
            "--gcs",
            "--bucket",
            gcs_bucket,
            "--prefix",
            "doctor/probe",
            "--endpoint-url",
            gcs_server.endpoint_url,
            "--GCSContentsManager.token=anon",
            "--GCSContentsManager.project=test",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"GCSContentsManager on gs://{gcs_bucket}" in run.stdout
    assert "[ ok ] credentials        anonymous access" in run.stdout
    for name in ("endpoint", "bucket", "list", "write", "read", "copy", "delete"):
        assert f"[ ok ] {name}" in run.stdout, run.stdout
    # fake-gcs-server ignores ifGenerationMatch=0 on rewriteTo: doctor says so.
    assert "[warn] conditional writes create-only copy NOT honoured" in run.stdout
    assert gcs_server.keys(gcs_bucket, "doctor/probe/") == []


def test_doctor_reports_versioning_on_gcs(gcs_server: GCSServer) -> None:
    bucket = f"v-{secrets.token_hex(6)}"
    gcs_server.request(
        "POST", "b", {"name": bucket, "versioning": {"enabled": True}}, {"project": "test"}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_GCS_", "JPYNB_GCS_"))}
    env["JUPYTER_CONFIG_DIR"] = "/nonexistent"
    args = [
        sys.executable,
        "-m",
        "s3contents.cli",
        "doctor",
        "--gcs",
        "--bucket",
        bucket,
        "--prefix",
        "p",
        "--endpoint-url",
        gcs_server.endpoint_url,
        "--GCSContentsManager.token=anon",
        "--GCSContentsManager.project=test",
    ]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    history = run.stdout.split("[warn] history", 1)[1]
    assert "versioning on, and no lifecycle rule expires noncurrent versions under 'p/'" in history
    assert '"isLive": false, "daysSinceNoncurrentTime": 30, "numNewerVersions": 20' in history
    assert f"gcloud storage buckets update gs://{bucket} --lifecycle-file=FILE" in history
