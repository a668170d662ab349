"""``GCSContentsManager``'s settings, environment variables and gcsfs's import-time switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest
from tornado.web import HTTPError
from traitlets import TraitError

from s3contents.gcs import GCSContentsManager
from s3contents.gcs.manager import resolve_token
from s3contents.gcs.storage import GCSStorage
from tests.support.gcs_server import GCSServer

OLD_VARIABLES = {
    "project": "JPYNB_GCS_PROJECT",
    "token": "JPYNB_GCS_TOKEN_PATH",
    "region_name": "JPYNB_GCS_REGION_NAME",
    "bucket": "JPYNB_GCS_BUCKET",
}
NEW_VARIABLES = {
    "prefix": "JPY_GCS_PREFIX",
    "endpoint_url": "JPY_GCS_ENDPOINT_URL",
    "separator": "JPY_GCS_SEPARATOR",
}


@pytest.fixture
def no_gcs_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("JPY_GCS_", "JPYNB_GCS_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_setting_has_help_naming_its_variables() -> None:
    for name, trait in GCSContentsManager.class_traits(config=True).items():
        variables = trait.metadata.get("env")
        if name in {*OLD_VARIABLES, *NEW_VARIABLES}:
            assert variables, name
        if variables:
            help_text = " ".join(trait.help.split())
            assert "Default:" in help_text, name
            for variable in variables[:2]:
                assert variable in help_text, (name, variable)
    assert GCSContentsManager.folder_marker == ".gcskeep"


def test_environment_variables_really_work(
    no_gcs_env: pytest.MonkeyPatch, gcs_server: GCSServer
) -> None:
    values = {
        "JPYNB_GCS_PROJECT": "proj",
        "JPYNB_GCS_TOKEN_PATH": "anon",
        "JPYNB_GCS_REGION_NAME": "europe-west1",
        "JPYNB_GCS_BUCKET": "old-bucket",
        "JPY_GCS_PREFIX": "some/prefix",
        "JPY_GCS_ENDPOINT_URL": gcs_server.endpoint_url,
        "JPY_GCS_SEPARATOR": "/",
    }
    for name, value in values.items():
        no_gcs_env.setenv(name, value)
    cm = GCSContentsManager()
    assert (cm.project, cm.token, cm.region_name, cm.bucket) == (
        "proj",
        "anon",
        "europe-west1",
        "old-bucket",
    )
    assert (cm.prefix, cm.endpoint_url) == ("some/prefix", gcs_server.endpoint_url)
    assert cast(GCSStorage, cm.storage).location == gcs_server.endpoint_url
    # JPY_GCS_* twins win over the old names; keyword arguments win over both.
    no_gcs_env.setenv("JPY_GCS_BUCKET", "new-bucket")
    assert GCSContentsManager().bucket == "new-bucket"
    assert GCSContentsManager(bucket="kwarg").bucket == "kwarg"


def test_token_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "creds.json").write_text("{}")
    assert resolve_token("~/creds.json") == str(tmp_path / "creds.json")
    for method in ("anon", "google_default", "cloud"):
        assert resolve_token(method) == method
    assert resolve_token(None) == "google_default"
    assert resolve_token("") == "google_default"
    with pytest.raises(TraitError, match="no credentials file"):
        resolve_token("~/missing.json")


def test_bucket_names(no_gcs_env: pytest.MonkeyPatch) -> None:
    assert GCSContentsManager(bucket="gs://b", token="anon").bucket == "b"
    with pytest.raises(TraitError):
        GCSContentsManager(bucket="b/key", token="anon")


async def test_missing_bucket_answers_503_naming_it(make_gcs_cm: Any) -> None:
    cm: GCSContentsManager = make_gcs_cm(bucket="no-such-gcs-bucket")
    with pytest.raises(HTTPError) as info:
        await cm.get("")
    assert info.value.status_code == 503
    assert "no-such-gcs-bucket" in str(info.value.log_message)


_PROBE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    began = time.monotonic()
    from s3contents.gcs import GCSContentsManager
    import gcsfs, gcsfs.core

    async def main():
        cm = GCSContentsManager(**json.loads(sys.argv[1]))
        try:
            start = time.monotonic()
            model = await cm.get("", content=True)
            return model["type"], time.monotonic() - start
        finally:
            await cm.close()

    kind, listing_seconds = asyncio.run(main())
    print(json.dumps({
        "type": kind,
        "listing_seconds": listing_seconds,
        "total_seconds": time.monotonic() - began,
        "variable": os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"),
        "core_class": gcsfs.GCSFileSystem is gcsfs.core.GCSFileSystem,
    }))
    """
)


def _fresh_process(config: dict[str, str], variable: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"}
    if variable is not None:
        env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = variable
    result = subprocess.run(
        [sys.executable, "-c", _PROBE_SCRIPT, json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_gcsfs_bucket_type_probe_is_off_in_a_fresh_process(gcs_config: dict[str, str]) -> None:
    """Importing s3contents.gcs imports gcsfs with its gRPC probes off (they stall ~1 min
    against emulators), and does not leave the variable set for kernels to inherit."""
    answer = _fresh_process(gcs_config, None)
    assert answer["type"] == "directory"
    assert answer["core_class"] is True
    assert answer["variable"] is None
    # The probe stalls about 60 s: half of that tells it apart, even on a loaded machine
    # (a fresh process importing Jupyter took 10.7 s once, with two test runs beside it).
    assert answer["listing_seconds"] < 30
    assert answer["total_seconds"] < 30


def test_opting_back_in_is_respected_and_still_fast(gcs_config: dict[str, str]) -> None:
    """GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=true keeps gcsfs's experimental class for other
    code; the manager speaks the JSON API through the core class, so it never probes."""
    answer = _fresh_process(gcs_config, "true")
    assert answer["variable"] == "true"
    assert answer["core_class"] is False
    assert answer["listing_seconds"] < 30
