"""Credentials never appear in logs (any logger, any level), error responses or tracebacks.

Every log record made anywhere in the process is captured at DEBUG: a tap on logging's
record factory formats each record the moment it is made (message, traceback, stack), which
catches records of loggers that do not propagate (traitlets' application log) and records
no handler would show; a root handler at DEBUG, ``caplog`` and pytest-jupyter's server log
stream are scanned as well. botocore, aiobotocore, urllib3, aiohttp, tornado, traitlets and
the server's loggers are all at DEBUG, so botocore prints every request it signs.

A live Jupyter Server then does a realistic session (files, notebooks, checkpoints, renames,
copies, a chunked upload, downloads, and failures: 404, 409, 400), and managers called
directly fail the other ways (wrong secret: 403; a session token SeaweedFS does not know:
403; a missing bucket: 503; an endpoint where nothing listens: 503). The text of every log
record, every HTTP error response (body and headers), and the ``str``, ``repr`` and formatted
traceback of every exception (its whole ``__cause__``/``__context__`` chain) must hold none
of the access key id, the secret key and the session token.

The checks are not vacuous: the captured logs must show botocore's signed requests with the
key id masked (``Credential=s3c1…/``), the session token header masked, and traitlets'
``Config changed`` dump with ``secret_access_key`` masked.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import socket
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from s3contents import S3ContentsManager, redact
from tests.support.servers import S3Server

#: A session token of the form AWS issues, unknown to SeaweedFS (which then answers 403).
SESSION_TOKEN = "IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(48)
WRONG_SECRET = "wrong+secret/" + secrets.token_urlsafe(24)

LOGGERS = (
    "",
    "botocore",
    "aiobotocore",
    "urllib3",
    "aiohttp",
    "asyncio",
    "tornado",
    "tornado.access",
    "tornado.application",
    "tornado.general",
    "traitlets",
    "ServerApp",
    "s3contents",
)
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": 1,
            "id": "c1",
            "metadata": {},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": "hi\n"}],
            "source": "print('hi')",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


class LeakTap:
    """Everything that could show a credential, collected as text by where it came from."""

    def __init__(self) -> None:
        self.records: list[str] = []  # every record, formatted when it was made
        self.record_names: list[str] = []
        self.handler_out = io.StringIO()
        self.other: dict[str, list[str]] = {"responses": [], "exceptions": [], "streams": []}
        self._formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    # -- collection -----------------------------------------------------------------------
    def factory(self, previous: Callable[..., logging.LogRecord]) -> Callable[..., Any]:
        def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            self.records.append(self._formatter.format(record))
            self.record_names.append(record.name)
            return record

        return make

    def response(self, response: HTTPResponse | None) -> int:
        assert response is not None
        self.other["responses"].append(response.body.decode("utf-8", "replace"))
        self.other["responses"].append(str(response.headers))
        return int(response.code)

    def exception(self, err: BaseException) -> None:
        seen: set[int] = set()
        current: BaseException | None = err
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.other["exceptions"].append(str(current))
            self.other["exceptions"].append(repr(current))
            self.other["exceptions"].append(
                "".join(traceback.format_exception(type(current), current, current.__traceback__))
            )
            current = current.__cause__ or current.__context__

    # -- checks ---------------------------------------------------------------------------
    def texts(self) -> dict[str, list[str]]:
        return {
            "log records": self.records,
            "root handler": [self.handler_out.getvalue()],
            **self.other,
        }

    def log_text(self) -> str:
        return "\n".join(self.records)

    def assert_clean(self, credentials: dict[str, str]) -> None:
        leaks = []
        for where, texts in self.texts().items():
            for text in texts:
                for name, value in credentials.items():
                    at = text.find(value)
                    if at >= 0:
                        around = text[max(0, at - 80) : at + len(value) + 40]
                        for other, secret in credentials.items():  # the report leaks none
                            around = around.replace(secret, f"<{other}>")
                        leaks.append(f"{name} in {where}: ...{around}")
        assert not leaks, f"{len(leaks)} leaks, first ones:\n" + "\n".join(leaks[:10])


@pytest.fixture
def tap(caplog: pytest.LogCaptureFixture) -> Iterator[LeakTap]:
    """Capture every log record of the process at DEBUG (see the module docstring).

    Requested before the server fixtures, so that the server's start-up is captured too.
    """
    assert redact.installed()  # importing s3contents did it; the tap wraps it
    leak_tap = LeakTap()
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(leak_tap.factory(previous))
    handler = logging.StreamHandler(leak_tap.handler_out)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield leak_tap
    finally:
        logging.setLogRecordFactory(previous)
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _credentials(s3_config: dict[str, str], **more: str) -> dict[str, str]:
    return {
        "access key id": s3_config["access_key_id"],
        "secret key": s3_config["secret_access_key"],
        **more,
    }


async def _expect_error(tap: LeakTap, call: Awaitable[Any], status: int) -> None:
    try:
        await call
    except Exception as err:
        tap.exception(err)
        assert getattr(err, "status_code", None) == status, repr(err)
    else:
        raise AssertionError(f"expected {status}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _finish(
    tap: LeakTap,
    caplog: pytest.LogCaptureFixture,
    jp_logging_stream: io.StringIO,
    credentials: dict[str, str],
) -> str:
    tap.other["streams"] += [caplog.text, jp_logging_stream.getvalue()]
    tap.assert_clean(credentials)
    sdk = sum(1 for name in tap.record_names if name.startswith(redact.SDK_LOGGERS))
    print(  # the figures of docs/reliability.md
        f"\n{len(tap.records)} log records ({sdk} from the SDKs), "
        f"{len(tap.other['responses']) // 2} HTTP responses, "
        f"{len(tap.other['exceptions']) // 3} exceptions (chains walked) scanned: no credential"
    )
    return tap.log_text()


# --------------------------------------------------------------------------- a working server


async def test_no_credential_in_logs_responses_or_tracebacks_of_a_session(
    tap: LeakTap,
    jp_serverapp: Any,
    jp_fetch: Any,
    jp_logging_stream: io.StringIO,
    make_cm: Callable[..., S3ContentsManager],
    s3_config: dict[str, str],
    seaweedfs: S3Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = json.dumps({"type": "file", "format": "text", "content": "hello"})
    nb = {"type": "notebook", "format": "json", "content": NOTEBOOK}
    chunk = {"type": "file", "format": "text", "content": "hello"}
    # A session: create, read, checkpoint, restore, copy, rename, upload in chunks, download,
    # delete; then failures: 404, 409, 400. (method, URL path, body, expected status)
    session = [
        ("PUT", "api/contents/d", json.dumps({"type": "directory"}), 201),
        ("PUT", "api/contents/d/a.txt", text, 201),
        ("PUT", "api/contents/d/a.txt", text, 200),
        ("PUT", "api/contents/n.ipynb", json.dumps(nb), 201),
        ("GET", "api/contents/n.ipynb", None, 200),
        ("GET", "api/contents/d", None, 200),
        ("GET", "api/contents", None, 200),
        ("POST", "api/contents/n.ipynb/checkpoints", "", 201),
        ("GET", "api/contents/n.ipynb/checkpoints", None, 200),
        ("POST", "api/contents/n.ipynb/checkpoints/checkpoint", "", 204),
        ("POST", "api/contents/d", json.dumps({"copy_from": "n.ipynb"}), 201),
        ("PATCH", "api/contents/d/a.txt", json.dumps({"path": "d/b.txt"}), 200),
        *[
            ("PUT", "api/contents/big.txt", json.dumps({**chunk, "chunk": n}), 201)
            for n in (1, 2, -1)
        ],
        ("GET", "files/d/b.txt", None, 200),
        ("DELETE", "api/contents/d/b.txt", None, 204),
        ("GET", "api/contents/missing.txt", None, 404),
        ("GET", "files/missing.txt", None, 404),
        ("POST", "api/contents/missing.txt/checkpoints/checkpoint", "", 404),
        ("PATCH", "api/contents/big.txt", json.dumps({"path": "n.ipynb"}), 409),
        ("PUT", "api/contents/x.ipynb", json.dumps({**nb, "content": "{}"}), 400),
        ("GET", "api/contents/../x.txt", None, 404),
    ]
    for method, url, body, expect in session:
        try:
            response = await jp_fetch(*url.split("/"), method=method, body=body)
        except HTTPClientError as err:
            tap.exception(err)
            response = err.response
        assert tap.response(response) == expect, (method, url)

    # Managers called directly, failing every other way.
    good = make_cm()
    await _expect_error(tap, good.get("missing.txt"), 404)
    await _expect_error(tap, good.rename("n.ipynb", "big.txt"), 409)
    wrong = make_cm(secret_access_key=WRONG_SECRET)
    await _expect_error(tap, wrong.get(""), 403)
    # (``text`` is the REST body, a str, not a model: the wrong credentials fail first)
    await _expect_error(tap, wrong.save(text, "w.txt"), 403)  # type: ignore[arg-type]
    missing = make_cm(bucket=f"missing-{secrets.token_hex(6)}")
    await _expect_error(tap, missing.get(""), 503)
    refused = make_cm(
        endpoint_url=f"http://127.0.0.1:{_free_port()}",
        s3fs_config_kwargs={"retries": {"mode": "standard", "max_attempts": 1}},
    )
    await _expect_error(tap, refused.get("n.ipynb"), 503)

    logs = _finish(
        tap, caplog, jp_logging_stream, _credentials(s3_config, **{"wrong secret": WRONG_SECRET})
    )
    key_id = s3_config["access_key_id"]
    assert len(tap.records) > 500
    assert any(name.startswith("botocore") for name in tap.record_names)
    assert "Sending http request" in logs  # botocore printed each signed request...
    assert f"Credential={key_id[:4]}…/" in logs  # ...with the key id masked
    assert re.search(r"Config changed: .*'secret_access_key': '\*\*\*\*'", logs)
    assert seaweedfs.endpoint_url  # the real server was used, not a stand-in


# --------------------------------------------------------------------------- a session token


@pytest.mark.parametrize("extra_cm_config", [{"session_token": SESSION_TOKEN}], indirect=True)
async def test_no_session_token_in_logs_responses_or_tracebacks(
    tap: LeakTap,
    jp_serverapp: Any,
    jp_fetch: Any,
    jp_logging_stream: io.StringIO,
    make_cm: Callable[..., S3ContentsManager],
    s3_config: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SeaweedFS takes a request with a session token for temporary credentials it never
    # issued: every request is refused (403), and is still logged in full by botocore.
    for args, kwargs in (
        (("api", "contents"), {}),
        (("api", "contents", "a.txt"), {}),
        (
            ("api", "contents", "a.txt"),
            {
                "method": "PUT",
                "body": json.dumps({"type": "file", "format": "text", "content": "x"}),
            },
        ),
        (("api", "contents", "a.txt", "checkpoints"), {"method": "POST", "body": ""}),
        (("files", "a.txt"), {}),
    ):
        with pytest.raises(HTTPClientError) as raised:
            await jp_fetch(*args, **kwargs)
        tap.exception(raised.value)
        assert tap.response(raised.value.response) == 403, args

    direct = make_cm(session_token=SESSION_TOKEN)
    await _expect_error(tap, direct.get("n.ipynb"), 403)
    await _expect_error(tap, direct.delete("n.ipynb"), 403)

    logs = _finish(
        tap, caplog, jp_logging_stream, _credentials(s3_config, **{"session token": SESSION_TOKEN})
    )
    assert re.search(r"(?i)x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?\*\*\*\*", logs)
    assert re.search(r"Config changed: .*'session_token': '\*\*\*\*'", logs)
    assert "InvalidAccessKeyId" in logs or "AccessDenied" in logs
