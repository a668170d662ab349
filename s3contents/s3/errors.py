"""The one table from S3's error answers to the package's errors (provider layer).

:func:`translate` builds each message from the error code alone: the provider's text is
safe, but botocore's exception also carries the request's details (for a refused signature,
the string signed and the key id), which stay out of the answer. The adapter chains it
(``raise ... from err``) for tracebacks, where :mod:`s3contents.redact` masks what is
secret. Used by the S3 adapter's choke point (:mod:`s3contents.s3.storage`).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..errors import (
    AlreadyExists,
    BadCredentials,
    BadRequest,
    Conflict,
    ContentsError,
    Forbidden,
    NotFound,
    Unavailable,
)

__all__ = ["BAD_CREDENTIALS", "DENIED", "PRECONDITION", "denied", "translate"]

#: Operations that change the bucket: refused ones say "write access denied".
_CHANGES = {
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "DeleteObject",
    "DeleteObjects",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
}

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload"})
BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)
DENIED = BAD_CREDENTIALS | {
    "AccessDenied",
    "403",
    "Forbidden",
    "AllAccessDisabled",
    "AccountProblem",
}
PRECONDITION = frozenset({"PreconditionFailed", "412"})
_CONFLICT = frozenset({"ConditionalRequestConflict", "OperationAborted", "409"})
_BAD = frozenset(
    {"InvalidArgument", "InvalidRequest", "KeyTooLongError", "EntityTooLarge", "InvalidPart"}
)


def denied(code: str, op: str, what: str, key: str | None, url: str) -> Forbidden:
    """Refused access (valid credentials): writes say so, reads name what was refused."""
    if op in _CHANGES:
        return Forbidden(
            f"Write access denied by object storage ({code}) for {what} in {url}: "
            "these credentials are not allowed to write there (read-only?)",
            path=key,
        )
    return Forbidden(f"Access denied by object storage ({code}) for {what} in {url}", path=key)


def translate(
    err: ClientError,
    op: str,
    key: str | None,
    kwargs: dict[str, Any],
    bucket: str,
    url: str,
    endpoint: str,
) -> ContentsError:
    """The package's error for an S3 error answer to ``op`` on ``key`` (``kwargs``: the
    request's arguments, for its preconditions)."""
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    what = f"{op} {key}" if key else op
    if code == "NoSuchBucket":
        return Unavailable(f"Bucket {bucket!r} does not exist", path=key)
    if code in _NOT_FOUND or status == 404:
        return NotFound(f"No such object: {key}", path=key)
    if code in PRECONDITION or status == 412:
        if kwargs.get("IfNoneMatch") == "*":
            return AlreadyExists(f"Already exists: {key}", path=key)
        return Conflict(f"{key} was changed by someone else", path=key)
    if code in _CONFLICT or status == 409:
        return Conflict(f"A concurrent write to {key} won; try again", path=key)
    if code in BAD_CREDENTIALS:
        return BadCredentials(
            f"Access denied: object storage at {endpoint} rejected the credentials "
            f"({code}) for {what} in {url}",
            path=key,
        )
    if code in DENIED or status == 403:
        return denied(code, op, what, key, url)
    if code in _BAD or status == 400:
        return BadRequest(f"Object storage refused {what}: {code}", path=key)
    return Unavailable(
        f"Object storage error {code or status} on {what}; try again later", path=key
    )
