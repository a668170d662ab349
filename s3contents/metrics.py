"""Prometheus metrics of the storage requests, on Jupyter Server's ``/metrics``.

Jupyter Server serves prometheus_client's default registry at ``/metrics``; the metrics
below are registered there once, when this module is first imported (a re-import, e.g.
``importlib.reload``, reuses the registered objects instead of failing).

Every request an adapter sends passes :meth:`Storage._bounded
<s3contents.storage.base.Storage._bounded>`, which tells the adapter's observer (a
:class:`~s3contents.storage.base.RequestObserver`): one observation per logical request,
whatever retries the SDK made inside it (botocore's retry loop, the GCS adapter's own).
:class:`StorageMeter` is that observer for Prometheus; the contents manager attaches one to
its adapter (``ObjectStoreContentsManager.storage``). The port knows nothing of this module.

Labels (all bounded: never a key, a path or a message):

* ``provider``: ``s3`` or ``gcs``;
* ``bucket``: the configured bucket;
* ``operation``: the request kind, as counted in ``Storage.stats``: ``LIST``, ``GET``,
  ``HEAD``, ``PUT``, ``COPY``, ``DELETE``, ``POST``;
* ``outcome`` (requests only): ``ok``, or how the request ended (:data:`OUTCOMES`);
* ``error`` (errors only): the package's error class (``Forbidden``, ``BadCredentials``,
  ``Unavailable``, ``BadRequest``, ``TooLarge``), ``Unexpected`` for anything else.

Outcomes that are answers, not failures: ``not_found`` (a HEAD probing whether a name is
free, a GET of a deleted file) and ``conflict`` (a create-only write or copy that found the
name taken, a conditional write that found the object changed: the store settling a race as
asked) are counted in ``s3contents_storage_requests_total`` only; ``cancelled`` (the
caller went away) too. Everything else (``denied``, ``bad_credentials``, ``bad_request``,
``unavailable``, ``timeout``, ``error``) is a failure of storage or of its configuration and
is also counted in ``s3contents_storage_errors_total``.

The cost per request is a few dictionary look-ups and lock-protected additions (about
3 µs), next to the milliseconds of the request itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from .errors import (
    AlreadyExists,
    BadCredentials,
    BadRequest,
    Conflict,
    ContentsError,
    Forbidden,
    NotEmpty,
    NotFound,
    TooLarge,
    Unavailable,
)

__all__ = [
    "DURATION_BUCKETS",
    "ERRORS",
    "IN_FLIGHT",
    "OUTCOMES",
    "REQUESTS",
    "REQUEST_DURATION",
    "StorageMeter",
]

_M = TypeVar("_M", Counter, Gauge, Histogram)


def _metric(cls: type[_M], name: str, documentation: str, labels: list[str], **kw: Any) -> _M:
    """``cls(name, ...)`` registered in the default registry, or the one registered already
    under that name (a re-import of this module must not fail with a duplicate)."""
    try:
        return cls(name, documentation, labels, **kw)
    except ValueError:  # prometheus_client's DuplicateTimeseries
        existing = getattr(REGISTRY, "_names_to_collectors", {}).get(name)
        if not isinstance(existing, cls):
            raise
        return existing


#: Seconds: object stores answer small requests in 5-100 ms; big parts, batch deletes and
#: slow or throttled storage take seconds; 60 s is botocore's read timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = _metric(
    Counter,
    "s3contents_storage_requests",
    "Object storage requests (one per logical request, retries included), by outcome",
    ["provider", "bucket", "operation", "outcome"],
)
ERRORS = _metric(
    Counter,
    "s3contents_storage_errors",
    "Object storage requests that failed (denied, bad credentials, bad request, "
    "unavailable, timed out), by the package's error class",
    ["provider", "bucket", "operation", "error"],
)
REQUEST_DURATION = _metric(
    Histogram,
    "s3contents_storage_request_duration_seconds",
    "Duration of object storage requests, retries included (cancelled ones left out)",
    ["provider", "bucket", "operation"],
    buckets=DURATION_BUCKETS,
)
IN_FLIGHT = _metric(
    Gauge,
    "s3contents_storage_requests_in_flight",
    "Object storage requests sent and not answered yet",
    ["provider", "bucket"],
)

#: Error class -> outcome label (subclasses: the nearest class listed).
_OUTCOME_OF: dict[type, str] = {
    NotFound: "not_found",
    AlreadyExists: "conflict",
    Conflict: "conflict",
    BadCredentials: "bad_credentials",
    Forbidden: "denied",
    BadRequest: "bad_request",
    NotEmpty: "bad_request",
    TooLarge: "bad_request",
    Unavailable: "unavailable",
}
#: Outcomes that are the store's answer to what was asked, not a failure.
_ANSWERS = frozenset({"ok", "not_found", "conflict", "cancelled"})
#: Every value of the ``outcome`` label.
OUTCOMES = (
    "ok",
    "not_found",
    "conflict",
    "cancelled",
    "denied",
    "bad_credentials",
    "bad_request",
    "unavailable",
    "timeout",
    "error",
)


def classify(err: BaseException | None, timed_out: bool = False) -> tuple[str, str | None]:
    """``(outcome, error)`` of a request that ended with ``err`` (None: success); ``error``
    is the label of ``s3contents_storage_errors_total``, None when it is no failure."""
    if err is None:
        return "ok", None
    if isinstance(err, asyncio.CancelledError):
        return "cancelled", None
    if not isinstance(err, ContentsError):
        return "error", "Unexpected"
    if timed_out:
        return "timeout", type(err).__name__
    outcome = "error"
    for cls in type(err).__mro__:
        if cls in _OUTCOME_OF:
            outcome = _OUTCOME_OF[cls]
            break
    return outcome, None if outcome in _ANSWERS else type(err).__name__


class StorageMeter:
    """The metrics of one adapter (``provider``, ``bucket``), label children cached, so a
    request costs no label look-up in prometheus_client: a
    :class:`~s3contents.storage.base.RequestObserver`."""

    __slots__ = ("_durations", "_errors", "_in_flight", "_requests", "bucket", "provider")

    def __init__(self, provider: str, bucket: str) -> None:
        self.provider = provider
        self.bucket = bucket
        self._in_flight = IN_FLIGHT.labels(provider, bucket)
        self._requests: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        self._errors: dict[tuple[str, str], Any] = {}

    def start(self) -> float:
        """A request is sent: returns its start time, for :meth:`done`."""
        self._in_flight.inc()
        return time.perf_counter()

    def done(
        self,
        operation: str,
        started: float,
        err: BaseException | None = None,
        timed_out: bool = False,
    ) -> None:
        """The request of kind ``operation`` started at ``started`` ended (``err``: how)."""
        elapsed = time.perf_counter() - started
        self._in_flight.dec()
        outcome, error = ("ok", None) if err is None else classify(err, timed_out)
        counter = self._requests.get((operation, outcome))
        if counter is None:
            counter = REQUESTS.labels(self.provider, self.bucket, operation, outcome)
            self._requests[operation, outcome] = counter
        counter.inc()
        if outcome != "cancelled":
            histogram = self._durations.get(operation)
            if histogram is None:
                histogram = REQUEST_DURATION.labels(self.provider, self.bucket, operation)
                self._durations[operation] = histogram
            histogram.observe(elapsed)
        if error is not None:
            errors = self._errors.get((operation, error))
            if errors is None:
                errors = ERRORS.labels(self.provider, self.bucket, operation, error)
                self._errors[operation, error] = errors
            errors.inc()
