"""Storage metrics (:mod:`s3contents.metrics`) on Jupyter Server's ``/metrics``.

Every storage request passes ``Storage._bounded``, which counts it once (retries included)
by provider, bucket, kind and outcome, times it, and counts failures by error class. The
process has one registry that every test shares, so each test works in a bucket of its own
(the ``bucket`` label) and compares values before and after, never absolute ones.

* the adapters: exact counts by kind and outcome on SeaweedFS and fake-gcs-server, the
  same totals as ``Storage.stats``; one observation for a request the GCS adapter retried;
  a stalled request in flight, then timed out; a cancelled one;
* a live Jupyter Server: ``/metrics`` (fetched with the server's token) shows the requests
  of a save, a listing, an opening and a 404, and the failures of wrong credentials;
* a manager on a missing bucket: its requests count as failures (``Unavailable``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import secrets
import socket
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError

from s3contents import S3ContentsManager, metrics
from s3contents.errors import (
    AlreadyExists,
    BadCredentials,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooLarge,
    Unavailable,
)
from s3contents.gcs.storage import GCSStorage
from s3contents.s3.storage import S3Storage
from s3contents.storage.base import PutMode, Storage
from tests.support.gcs_server import GCSServer
from tests.support.servers import S3Server, free_ports

_S = TypeVar("_S", bound=Storage)

NOTEBOOK = {
    "cells": [],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def s3_config(seaweedfs: S3Server, bucket: str) -> dict[str, str]:
    """``S3ContentsManager`` settings on a bucket of the test's own: its ``bucket`` label
    is the test's alone (the live server's settings come from here too)."""
    return {
        "bucket": bucket,
        "prefix": f"t/{secrets.token_hex(4)}",
        "endpoint_url": seaweedfs.endpoint_url,
        "access_key_id": seaweedfs.access_key_id,
        "secret_access_key": seaweedfs.secret_access_key,
        "region_name": seaweedfs.region_name,
    }


def _snapshot(families: Iterable[Any], bucket: str) -> Counter[tuple[str, ...]]:
    """Our samples for ``bucket``: ``("requests", kind, outcome)``, ``("errors", kind,
    error)``, ``("count", kind)`` and ``("seconds", kind)`` (the histogram's count and sum),
    ``("in_flight",)``."""
    out: Counter[tuple[str, ...]] = Counter()
    for family in families:
        if not family.name.startswith("s3contents_storage_"):
            continue
        for s in family.samples:
            labels = s.labels
            if labels.get("bucket") != bucket:
                continue
            if s.name == "s3contents_storage_requests_total":
                out["requests", labels["operation"], labels["outcome"]] += s.value
            elif s.name == "s3contents_storage_errors_total":
                out["errors", labels["operation"], labels["error"]] += s.value
            elif s.name == "s3contents_storage_request_duration_seconds_count":
                out["count", labels["operation"]] += s.value
            elif s.name == "s3contents_storage_request_duration_seconds_sum":
                out["seconds", labels["operation"]] += s.value
            elif s.name == "s3contents_storage_requests_in_flight":
                out["in_flight",] += s.value
    return out


def _metered(storage: _S) -> _S:
    """An adapter made here, measured as a manager measures its own (the manager attaches
    the meter, the port only calls it)."""
    storage.observer = metrics.StorageMeter(storage.provider, storage.bucket)
    return storage


def _registry(bucket: str) -> Counter[tuple[str, ...]]:
    return _snapshot(REGISTRY.collect(), bucket)


def _counts(delta: Counter[tuple[str, ...]]) -> dict[tuple[str, ...], float]:
    """The counters of a difference (not the seconds), without zeros."""
    return {k: v for k, v in delta.items() if k[0] != "seconds" and v}


def _by_kind(delta: Counter[tuple[str, ...]]) -> Counter[str]:
    """Requests by kind, whatever their outcome."""
    kinds: Counter[str] = Counter()
    for key, value in delta.items():
        if key[0] == "requests":
            kinds[key[1]] += int(value)
    return kinds


def _histogram_matches(delta: Counter[tuple[str, ...]]) -> None:
    """Every request was timed once, and took some time."""
    for kind, n in _by_kind(delta).items():
        assert delta["count", kind] == n, kind
        assert delta["seconds", kind] > 0, kind


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# --------------------------------------------------------------------------- the module


def test_outcomes_of_each_error_class() -> None:
    assert metrics.classify(None) == ("ok", None)
    assert metrics.classify(NotFound("x")) == ("not_found", None)
    assert metrics.classify(AlreadyExists("x")) == ("conflict", None)
    assert metrics.classify(Conflict("x")) == ("conflict", None)
    assert metrics.classify(asyncio.CancelledError()) == ("cancelled", None)
    assert metrics.classify(Forbidden("x")) == ("denied", "Forbidden")
    assert metrics.classify(BadCredentials("x")) == ("bad_credentials", "BadCredentials")
    assert metrics.classify(BadRequest("x")) == ("bad_request", "BadRequest")
    assert metrics.classify(TooLarge("x")) == ("bad_request", "TooLarge")
    assert metrics.classify(Unavailable("x")) == ("unavailable", "Unavailable")
    assert metrics.classify(Unavailable("x"), timed_out=True) == ("timeout", "Unavailable")
    assert metrics.classify(KeyError("x")) == ("error", "Unexpected")
    assert {metrics.classify(e)[0] for e in (None, NotFound("x"), KeyError(1))} <= set(
        metrics.OUTCOMES
    )


def test_reimporting_the_module_keeps_the_registered_metrics() -> None:
    before = (metrics.REQUESTS, metrics.ERRORS, metrics.REQUEST_DURATION, metrics.IN_FLIGHT)
    reloaded = importlib.reload(metrics)
    after = (reloaded.REQUESTS, reloaded.ERRORS, reloaded.REQUEST_DURATION, reloaded.IN_FLIGHT)
    assert all(a is b for a, b in zip(before, after, strict=True))
    text = generate_latest(REGISTRY).decode()
    assert "# TYPE s3contents_storage_requests_total counter" in text
    assert "# TYPE s3contents_storage_request_duration_seconds histogram" in text


# --------------------------------------------------------------------------- adapters


async def test_s3_adapter_counts_each_request_once_by_kind_and_outcome(
    s3_config: dict[str, str],
) -> None:
    bucket = s3_config["bucket"]
    storage = _metered(
        S3Storage(
            bucket,
            client_kwargs={
                "endpoint_url": s3_config["endpoint_url"],
                "region_name": s3_config["region_name"],
                "aws_access_key_id": s3_config["access_key_id"],
                "aws_secret_access_key": s3_config["secret_access_key"],
            },
        )
    )
    p = s3_config["prefix"] + "/"
    before = _registry(bucket)
    try:
        await storage.put(p + "a.txt", b"a")
        with pytest.raises(AlreadyExists):
            await storage.put(p + "a.txt", b"b", mode=PutMode.CREATE)
        await storage.head(p + "a.txt")
        with pytest.raises(NotFound):
            await storage.head(p + "missing.txt")
        assert (await storage.get(p + "a.txt"))[0] == b"a"
        assert [o.key for o in (await storage.list(p)).objects] == [p + "a.txt"]
        await storage.copy(p + "a.txt", p + "b.txt")
        assert await storage.delete_many([p + "a.txt", p + "b.txt"]) == []
    finally:
        await storage.close()
    delta = _registry(bucket) - before
    assert _counts(delta) == {
        ("requests", "PUT", "ok"): 1,
        ("requests", "PUT", "conflict"): 1,
        ("requests", "HEAD", "ok"): 1,
        ("requests", "HEAD", "not_found"): 1,
        ("requests", "GET", "ok"): 1,
        ("requests", "LIST", "ok"): 1,
        ("requests", "COPY", "ok"): 1,
        ("requests", "DELETE", "ok"): 1,
        ("count", "PUT"): 2,
        ("count", "HEAD"): 2,
        ("count", "GET"): 1,
        ("count", "LIST"): 1,
        ("count", "COPY"): 1,
        ("count", "DELETE"): 1,
    }  # no errors: a name taken and a missing key are answers
    _histogram_matches(delta)
    assert storage.stats == _by_kind(delta)  # the round-trip counts, as before
    assert _registry(bucket)["in_flight",] == 0


async def test_gcs_adapter_counts_with_provider_gcs(gcs_server: GCSServer) -> None:
    bucket = gcs_server.make_bucket()
    storage = _metered(
        GCSStorage(
            bucket, project=gcs_server.project, token="anon", endpoint_url=gcs_server.endpoint_url
        )
    )
    before = _registry(bucket)
    try:
        await storage.put("d/a.txt", b"a")
        with pytest.raises(AlreadyExists):
            await storage.put("d/a.txt", b"b", mode=PutMode.CREATE)
        with pytest.raises(NotFound):
            await storage.head("d/missing.txt")
        assert (await storage.get("d/a.txt"))[0] == b"a"
        assert [o.key for o in (await storage.list("d/")).objects] == ["d/a.txt"]
        await storage.delete("d/a.txt")
    finally:
        await storage.close()
    delta = _registry(bucket) - before
    assert _counts(delta) == {
        ("requests", "PUT", "ok"): 1,
        ("requests", "PUT", "conflict"): 1,
        ("requests", "HEAD", "not_found"): 1,
        ("requests", "GET", "ok"): 1,
        ("requests", "LIST", "ok"): 1,
        ("requests", "DELETE", "ok"): 1,
        ("count", "PUT"): 2,
        ("count", "HEAD"): 1,
        ("count", "GET"): 1,
        ("count", "LIST"): 1,
        ("count", "DELETE"): 1,
    }
    _histogram_matches(delta)
    assert storage.stats == _by_kind(delta)
    # What Jupyter Server's /metrics handler serves: prometheus_client's default registry.
    text = generate_latest(REGISTRY).decode()
    assert (
        f's3contents_storage_requests_total{{bucket="{bucket}",operation="LIST",'
        f'outcome="ok",provider="gcs"}} 1.0' in text
    )


async def test_a_request_retried_by_the_adapter_is_one_observation() -> None:
    """The GCS adapter retries an unreachable server itself: ``stats`` counts each attempt,
    the metrics one logical request, failed, timed retries included."""
    (port,) = free_ports(1)
    bucket = f"t-{secrets.token_hex(6)}"
    storage = _metered(
        GCSStorage(bucket, token="anon", endpoint_url=f"http://127.0.0.1:{port}", retries=3)
    )
    before = _registry(bucket)
    try:
        with pytest.raises(Unavailable):
            await storage.head("a.txt")
    finally:
        await storage.close()
    assert storage.stats == {"HEAD": 3}
    delta = _registry(bucket) - before
    assert _counts(delta) == {
        ("requests", "HEAD", "unavailable"): 1,
        ("errors", "HEAD", "Unavailable"): 1,
        ("count", "HEAD"): 1,
    }
    assert delta["seconds", "HEAD"] >= 0.25 * 0.5  # at least the first pause between attempts


async def test_a_stalled_request_is_in_flight_then_times_out(
    silent_port: int, seaweedfs: S3Server
) -> None:
    bucket = f"t-{secrets.token_hex(6)}"
    storage = _metered(
        S3Storage(
            bucket,
            client_kwargs={
                "endpoint_url": f"http://127.0.0.1:{silent_port}",
                "region_name": seaweedfs.region_name,
                "aws_access_key_id": seaweedfs.access_key_id,
                "aws_secret_access_key": seaweedfs.secret_access_key,
            },
            config_kwargs={"retries": {"mode": "standard", "max_attempts": 1}},
        )
    )
    storage.request_timeout = 0.5
    before = _registry(bucket)
    try:
        # Timed out: an error, timed at the limit.
        task = asyncio.ensure_future(storage.head("a.txt"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if _registry(bucket)["in_flight",] == 1:
                break
        assert _registry(bucket)["in_flight",] == 1
        with pytest.raises(Unavailable, match=r"did not answer HeadObject within 0\.5 s"):
            await task
        # Cancelled (the caller went away): counted, not timed, no error.
        task = asyncio.ensure_future(storage.head("a.txt"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await storage.close()
    delta = _registry(bucket) - before
    assert _counts(delta) == {
        ("requests", "HEAD", "timeout"): 1,
        ("requests", "HEAD", "cancelled"): 1,
        ("errors", "HEAD", "Unavailable"): 1,
        ("count", "HEAD"): 1,
    }
    assert 0.5 <= delta["seconds", "HEAD"] < 5
    assert _registry(bucket)["in_flight",] == 0


async def test_a_missing_bucket_counts_as_failures(make_cm: Any) -> None:
    missing = f"t-missing-{secrets.token_hex(6)}"
    cm: S3ContentsManager = make_cm(bucket=missing)
    before = _registry(missing)
    with pytest.raises(HTTPError) as raised:
        await cm.get("")
    assert raised.value.status_code == 503
    delta = _registry(missing) - before
    assert _counts(delta) == {
        ("requests", "HEAD", "unavailable"): 1,  # HeadBucket: 404, the bucket is missing
        ("errors", "HEAD", "Unavailable"): 1,
        ("count", "HEAD"): 1,
    }


async def test_the_requests_of_an_unawaited_exists_are_counted(
    make_cm: Any, s3_config: dict[str, str]
) -> None:
    """jupytext's un-awaited ``exists`` is answered on a client of its own
    (``s3contents.syncprobe``): its requests are in the same counters."""
    cm: S3ContentsManager = make_cm()
    await cm.save({"type": "directory"}, "d")
    before = _registry(s3_config["bucket"])
    assert [bool(cm.exists(f"d/Untitled{ext}")) for ext in (".ipynb", ".py", ".md")] == [False] * 3
    delta = _registry(s3_config["bucket"]) - before
    assert _counts(delta) == {("requests", "LIST", "ok"): 1, ("count", "LIST"): 1}


# --------------------------------------------------------------------------- live server


async def _scrape(jp_fetch: Any, bucket: str) -> Counter[tuple[str, ...]]:
    """Our samples for ``bucket``, as ``/metrics`` serves them (with the server's token)."""
    r = await jp_fetch("metrics", method="GET")
    assert r.code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    return _snapshot(text_string_to_metric_families(r.body.decode()), bucket)


async def test_metrics_endpoint_shows_the_requests_of_the_contents_api(
    jp_fetch: Any, jp_serverapp: Any, s3_config: dict[str, str]
) -> None:
    bucket = s3_config["bucket"]
    stats = jp_serverapp.contents_manager.storage.stats
    await jp_fetch("api", "contents", "", method="GET")  # start-up: the bucket check

    async def step(*args: str, status: int = 200, **kwargs: Any) -> dict[tuple[str, ...], float]:
        before, counted = await _scrape(jp_fetch, bucket), Counter(stats)
        try:
            code = (await jp_fetch("api", "contents", *args, **kwargs)).code
        except HTTPClientError as err:
            code = err.code
        assert code == status
        delta = await _scrape(jp_fetch, bucket) - before
        _histogram_matches(delta)
        assert _by_kind(delta) == +(Counter(stats) - counted)  # one per request, as stats
        assert delta["in_flight",] == 0
        return _counts(delta)

    body = json.dumps({"type": "notebook", "format": "json", "content": NOTEBOOK})
    saved = await step("nb.ipynb", method="PUT", body=body, status=201)
    assert saved == {
        ("requests", "HEAD", "not_found"): 1,  # the handler's "does it exist?"
        ("requests", "PUT", "ok"): 1,  # the write time is known: no HEAD after it
        ("count", "HEAD"): 1,
        ("count", "PUT"): 1,
    }
    listed = await step("", method="GET")
    assert listed == {("requests", "LIST", "ok"): 1, ("count", "LIST"): 1}
    opened = await step("nb.ipynb", method="GET")
    assert opened == {("requests", "GET", "ok"): 1, ("count", "GET"): 1}
    resaved = await step("nb.ipynb", method="PUT", body=body)
    assert resaved == {
        ("requests", "HEAD", "ok"): 1,
        ("requests", "PUT", "ok"): 1,
        ("count", "HEAD"): 1,
        ("count", "PUT"): 1,
    }
    missing = await step("missing.ipynb", method="GET", status=404)
    assert missing == {
        ("requests", "GET", "not_found"): 1,  # not a file...
        # ...nor a folder (its tree is empty, and no emptied folder of SeaweedFS's is
        # there): 404, and no storage failure
        ("requests", "LIST", "ok"): 2,
        ("count", "GET"): 1,
        ("count", "LIST"): 2,
    }


@pytest.mark.parametrize(
    "extra_cm_config", [{"secret_access_key": "wrong-" + secrets.token_hex(16)}], indirect=True
)
async def test_metrics_endpoint_shows_rejected_credentials(
    jp_fetch: Any, jp_serverapp: Any, s3_config: dict[str, str]
) -> None:
    bucket = s3_config["bucket"]
    before = await _scrape(jp_fetch, bucket)
    for _ in range(2):
        with pytest.raises(HTTPClientError) as raised:
            await jp_fetch("api", "contents", "", method="GET")
        assert raised.value.code == 403
    delta = await _scrape(jp_fetch, bucket) - before
    # Each request checks the bucket first (a HEAD: its bodiless 403 is explained by one more
    # LIST inside the same logical request) and stops there, 403.
    assert _counts(delta) == {
        ("requests", "HEAD", "bad_credentials"): 2,
        ("errors", "HEAD", "BadCredentials"): 2,
        ("count", "HEAD"): 2,
    }
    assert jp_serverapp.contents_manager.storage.stats == {"HEAD": 2, "LIST": 2}
