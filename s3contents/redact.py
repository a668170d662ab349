"""Credentials never reach a log line, whatever logger writes it.

botocore's DEBUG logs print every request's headers: the access key id (in
``Authorization: ... Credential=<id>/...``) and the session token (``X-Amz-Security-Token``,
again in the canonical request it signs); traitlets' DEBUG log prints the whole configuration
(``Config changed: {... 'secret_access_key': '...'}``) before any contents manager exists. A
filter on one logger does not see the records that propagate from its children, and handlers
belong to whoever configures logging, so the redaction sits where every record is made:
:func:`install` wraps logging's record factory, once per process (importing ``s3contents``
does it, so that the configuration is masked too; the managers call it again, a no-op).

Every record made from then on, by any logger:

* formats to a masked message: its ``getMessage`` masks each secret registered with
  :func:`protect` (the managers register their access key id, secret key and session token,
  and the secret fields of a Google credentials file), plus, by pattern, the credentials the
  manager never sees (keys found by the AWS credential chain, OAuth tokens): the key id after
  ``Credential=`` and in S3's error documents, the value of an ``X-Amz-Security-Token``
  header or parameter, of ``Bearer``/``access_token``, and of settings named like
  ``secret_access_key``, ``access_key_id``, ``session_token``, ``client_secret``,
  ``refresh_token``;
* for the storage SDKs' loggers (:data:`SDK_LOGGERS`), is masked at once: ``msg`` becomes the
  masked message and ``args`` is emptied, so a handler reading ``record.args`` finds no
  request object either (the message is formatted when the record is made rather than when a
  handler emits it);
* carries a masked traceback (``exc_text``) and stack when they held a secret.

Only the formatted text is touched: the cost is a few substring scans per formatted message,
and nothing at all for records that a logger's level drops (they are never made).

A registered secret becomes ``****``; an access key id keeps its first 4 characters
(``AKIA…``), enough to tell which key was used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

__all__ = [
    "MASK",
    "SDK_LOGGERS",
    "install",
    "installed",
    "mask_key",
    "protect",
    "protect_json_file",
    "redact",
]

#: What a secret becomes.
MASK = "****"
#: Loggers whose records are masked as soon as they are made.
SDK_LOGGERS = (
    "botocore",
    "aiobotocore",
    "boto3",
    "urllib3",
    "aiohttp",
    "s3fs",
    "gcsfs",
    "google",
    "fsspec",
    "s3contents",
)
#: Shorter strings are not registered: masking them would garble unrelated text.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_masks: dict[str, str] = {}  # secret (and its URL-encoded form) -> mask
_ordered: list[tuple[str, str]] = []  # _masks' items, longest secret first
_previous_factory: Callable[..., logging.LogRecord] | None = None
_installed = False
_exc_formatter = logging.Formatter()


def _mask_setting(name: str, value: str) -> str:
    return f"{value[:4]}…" if "key_id" in name.lower() and len(value) > 8 else MASK


_VALUE = r"""['"]?\s*[:=]\s*b?['"]?"""
#: (cheap substring that must be present, pattern, replacement of the match)
_PATTERNS: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # SigV4 Authorization header and presigned URLs: "Credential=<key id>/" ("%2F" encoded).
    (
        "Credential=",
        re.compile(r"(Credential=)([A-Za-z0-9]{0,4})[A-Za-z0-9]*(/|%2F)"),
        lambda m: f"{m.group(1)}{m.group(2)}…{m.group(3)}",
    ),
    # S3 error documents (SignatureDoesNotMatch, InvalidAccessKeyId) name the key id.
    (
        "AccessKeyId>",
        re.compile(r"(<AWSAccessKeyId>)([A-Za-z0-9]{0,4})[A-Za-z0-9]*(<)"),
        lambda m: f"{m.group(1)}{m.group(2)}…{m.group(3)}",
    ),
    # Temporary credentials in the answers that hand them out, which botocore logs at DEBUG
    # ("Response body: ...") before anyone can register them: STS's XML
    # (<SecretAccessKey>, <SessionToken>), the instance and container endpoints' JSON
    # ("SecretAccessKey": ..., "Token": ...).
    (
        "",
        re.compile(r"(<(SecretAccessKey|SessionToken)>)[^<]*(</\2>)"),
        lambda m: f"{m.group(1)}{MASK}{m.group(3)}",
    ),
    (
        "",
        re.compile(
            r"""(\\?["'](?:SecretAccessKey|SessionToken|Token)\\?["']\s*:\s*\\?["'])[^"'\\]+"""
        ),
        lambda m: m.group(1) + MASK,
    ),
    # The session token: headers dict, canonical request ("x-amz-security-token:..."), query.
    (
        "ecurity-",
        re.compile(r"(x-amz-security-token" + _VALUE + r")[A-Za-z0-9+/=%_\-]+", re.I),
        lambda m: m.group(1) + MASK,
    ),
    # OAuth tokens: "Authorization: Bearer <token>", token endpoint answers.
    (
        "",
        re.compile(r"""(Bearer\s+|access_token""" + _VALUE + r")[A-Za-z0-9._~+/\-]+=*", re.I),
        lambda m: m.group(1) + MASK,
    ),
    # Settings by name (a configuration dump, keyword arguments, environment variables).
    (
        "",
        re.compile(
            r"((?:secret_access_key|access_key_id|session_token|security_token|client_secret"
            r"|refresh_token)" + _VALUE + r")([^'\"\s,}&]+)",
            re.I,
        ),
        lambda m: m.group(1) + _mask_setting(m.group(1), m.group(2)),
    ),
]
#: Substrings without which none of the untriggered patterns above can match.
_HINTS = (
    "Bearer",
    "access_token",
    "_key",
    "_token",
    "_secret",
    "_KEY",
    "_TOKEN",
    "_SECRET",
    "Token",
    "SecretAccessKey",
)


def protect(secret: str | None, *, keep: int = 0) -> None:
    """Mask ``secret`` in every log record made from now on.

    ``keep`` leading characters stay visible (4 for an access key id), only for secrets
    longer than twice that. ``None``, empty and very short strings are ignored.
    """
    global _ordered
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        return
    mask = f"{secret[:keep]}…" if keep and len(secret) > 2 * keep else MASK
    with _lock:
        forms = {secret, quote(secret, safe="")}
        if all(_masks.get(form) == mask for form in forms):
            return
        for form in forms:
            _masks[form] = mask
        _ordered = sorted(_masks.items(), key=lambda item: len(item[0]), reverse=True)


def protect_json_file(path: str) -> None:
    """Protect the secret fields of a JSON credentials file (a Google service account or
    authorized-user file: ``private_key``, ``private_key_id``, ``client_secret``,
    ``refresh_token``). A file that cannot be read is left alone (whoever uses it reports
    that)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return
    if not isinstance(data, dict):
        return
    for name in ("private_key", "private_key_id", "client_secret", "refresh_token"):
        value = data.get(name)
        if isinstance(value, str):
            protect(value)
            protect(json.dumps(value)[1:-1])  # as printed inside JSON or a repr ("\n")


def mask_key(key: str) -> str:
    """An access key id shown safely where a message names it on purpose (``doctor``, the
    credentials' description): its first 4 and last 2 characters."""
    return f"{key[:4]}…{key[-2:]}" if len(key) > 8 else "…"


def redact(text: str) -> str:
    """``text`` with every registered secret, and every credential found by pattern, masked."""
    for secret, mask in _ordered:  # longest first; "in" is a fast scan, a regex is not
        if secret in text:
            text = text.replace(secret, mask)
    hinted = any(h in text for h in _HINTS)
    for needle, regex, replace in _PATTERNS:
        if (needle and needle in text) or (not needle and hinted):
            text = regex.sub(replace, text)
    return text


class _RedactingRecord(logging.LogRecord):
    """A record whose message comes out masked (records keep their class otherwise)."""

    def getMessage(self) -> str:
        return redact(super().getMessage())


_classes: dict[type, type] = {logging.LogRecord: _RedactingRecord}


def _redacting_class(cls: type[logging.LogRecord]) -> type | None:
    if issubclass(cls, _RedactingRecord) or getattr(cls, "_s3contents_redacts", False):
        return None
    if cls not in _classes:

        def get_message(self: Any) -> str:
            return redact(cls.getMessage(self))

        attrs = {"getMessage": get_message, "_s3contents_redacts": True}
        _classes[cls] = type(cls.__name__, (cls,), attrs)
    return _classes[cls]


def _scrub(record: logging.LogRecord) -> None:
    masked = False
    if record.name.startswith(SDK_LOGGERS):
        with contextlib.suppress(Exception):  # a broken format string: the handler reports it
            record.msg, record.args = redact(record.getMessage()), ()
            masked = True
    sub = None if masked else _redacting_class(type(record))
    if sub is not None:
        try:
            record.__class__ = sub
        except TypeError:  # a record class with its own layout: mask it now instead
            with contextlib.suppress(Exception):
                record.msg, record.args = redact(record.getMessage()), ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = _exc_formatter.formatException(record.exc_info)
        masked_text = redact(text)
        if masked_text != text:
            record.exc_text = masked_text
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = (_previous_factory or logging.LogRecord)(*args, **kwargs)
    _scrub(record)
    return record


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return _installed


def install() -> None:
    """Make logging mask credentials in every record (see the module docstring).

    Once per process: later calls do nothing. The record factory in place at the time is
    wrapped; a factory set later by someone else should call the one it replaces, as
    logging's documentation asks of it.
    """
    global _previous_factory, _installed
    with _lock:
        if _installed:
            return
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_factory)
        _installed = True
