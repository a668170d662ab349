"""The kind of a storage request (LIST, GET, HEAD, PUT, COPY, DELETE, POST, OTHER), from its
method, target and headers: what :class:`tests.support.proxy.StorageProxy` counts.

:func:`classify` reads S3 requests (path-style addressing), :func:`classify_gcs` the GCS JSON
API's; :data:`CLASSIFIERS` names them by storage protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

__all__ = ["CLASSIFIERS", "KINDS", "Classifier", "classify", "classify_gcs"]

#: Display order of the request kinds.
KINDS = ("LIST", "GET", "HEAD", "PUT", "COPY", "DELETE", "POST", "OTHER")

# Listing query parameters (ListObjects v1/v2); a bucket GET with other subresources
# (?location, ?versioning, ...) is bucket configuration, not a listing.
_LIST_PARAMS = {"list-type", "prefix", "delimiter", "marker", "continuation-token", "max-keys"}

#: A classifier: (method, target, lower-cased headers) -> request kind.
Classifier = Callable[[str, str, dict[str, str]], str]


def classify(method: str, target: str, headers: dict[str, str]) -> str:
    """Return the request kind (one of :data:`KINDS`) of an S3 request.

    Only path-style addressing is expected: the clients talk to ``http://127.0.0.1:PORT``, for
    which botocore and s3fs never use virtual-hosted buckets.
    """
    parts = urlsplit(target)
    path = parts.path.lstrip("/")
    bucket, _, key = path.partition("/")
    query = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    method = method.upper()
    if method == "GET":
        if not bucket:
            return "OTHER"  # ListBuckets
        if not key:
            return "LIST" if not query or query & _LIST_PARAMS else "OTHER"
        return "GET"
    if method == "HEAD":
        return "HEAD"
    if method == "PUT":
        if "x-amz-copy-source" in headers:
            return "COPY"  # CopyObject and UploadPartCopy
        return "PUT" if key else "OTHER"  # PutObject/UploadPart vs CreateBucket etc.
    if method == "DELETE":
        return "DELETE"
    if method == "POST":
        if "delete" in query:
            return "DELETE"  # DeleteObjects (batch)
        if "uploads" in query or "uploadId" in query:
            return "POST"  # CreateMultipartUpload / CompleteMultipartUpload
        return "OTHER"
    return "OTHER"


def classify_gcs(method: str, target: str, headers: dict[str, str]) -> str:
    """Return the request kind (one of :data:`KINDS`) of a GCS JSON API request.

    ``GET .../o?prefix=`` (objects.list) is LIST, ``GET .../o/NAME?alt=media`` (or
    ``GET /download/...``) GET, ``GET .../o/NAME`` (object metadata) HEAD, uploads (``POST
    /upload/...`` in one request, or the bytes of a resumable upload, sent to its session URI)
    PUT, the start of a resumable upload POST,
    ``.../rewriteTo/...`` and ``.../copyTo/...`` COPY, ``DELETE`` (an object, or a resumable
    session) and the batch endpoint (``/batch/storage/v1``) DELETE.  Bucket metadata
    (``GET /storage/v1/b/BUCKET``) is HEAD, as S3's HeadBucket.
    """
    parts = urlsplit(target)
    path = parts.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    method = method.upper()
    if path.startswith("/batch/"):
        return "DELETE"  # the only batch calls the adapter makes are deletions
    if method == "DELETE":
        return "DELETE"
    if "upload_id" in query:
        # The session URI of a resumable upload: its bytes, by PUT (or POST, as gcsfs
        # sends them), or an empty PUT asking the session's status.
        return "PUT"
    if path.startswith("/upload/"):
        if method == "POST":
            return "POST" if query.get("uploadType") == "resumable" else "PUT"
        if method == "PUT":
            return "PUT"  # bytes of a resumable upload (the session URI)
        return "OTHER"
    if path.startswith("/download/storage/v1/"):
        # The media download URL gcsfs uses (same as ``?alt=media`` on the object).
        return "GET" if method == "GET" else "OTHER"
    if "/rewriteTo/" in path or "/copyTo/" in path:
        return "COPY"
    segments = path.strip("/").split("/")
    # storage/v1/b/BUCKET[/o[/NAME...]]
    if segments[:3] != ["storage", "v1", "b"] or len(segments) < 4:
        return "OTHER"
    if method == "GET":
        if len(segments) == 4:
            return "HEAD"  # bucket metadata
        if len(segments) == 5 and segments[4] == "o":
            return "LIST"
        if len(segments) > 5 and segments[4] == "o":
            return "GET" if query.get("alt") == "media" else "HEAD"
    if method == "HEAD":
        return "HEAD"
    return "OTHER"


#: Classifiers by storage protocol.
CLASSIFIERS: dict[str, Classifier] = {"s3": classify, "gcs": classify_gcs}
