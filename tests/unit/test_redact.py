"""Unit tests of the log redaction (``s3contents.redact``): no server, no network.

Secrets registered here are random, so the process-wide registry stays harmless to other
tests.
"""

from __future__ import annotations

import io
import logging
import secrets
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from s3contents import redact
from s3contents.redact import MASK


def _secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(24)


@pytest.fixture
def root_text() -> Iterator[io.StringIO]:
    """Everything the root logger emits at DEBUG, formatted with tracebacks and stacks."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


class _Request:
    """Stands in for botocore's AWSPreparedRequest: its repr holds the headers."""

    def __init__(self, headers: dict[str, bytes]) -> None:
        self.headers = headers

    def __repr__(self) -> str:
        return f"<AWSPreparedRequest headers={self.headers}>"


# --------------------------------------------------------------------------- redact()


def test_registered_secrets_are_masked_everywhere_in_a_text() -> None:
    secret, token, key_id = _secret("S/+"), _secret("T="), "AKIA" + secrets.token_hex(8).upper()
    redact.protect(secret)
    redact.protect(token)
    redact.protect(key_id, keep=4)
    text = f"a {secret} b {quote(secret, safe='')} c {token}{token} d {key_id}."
    masked = redact.redact(text)
    for value in (secret, quote(secret, safe=""), token, key_id):
        assert value not in masked
    assert masked == f"a {MASK} b {MASK} c {MASK}{MASK} d AKIA….", masked


@pytest.mark.parametrize("value", [None, "", "abc", 12345])
def test_nothing_and_short_strings_are_not_registered(value: object) -> None:
    redact.protect(value)  # type: ignore[arg-type]
    assert redact.redact("abc abcd") == "abc abcd"


def test_a_secret_inside_another_is_masked_whole() -> None:
    inner = _secret()
    outer = "x" + inner + "y"
    redact.protect(inner)
    redact.protect(outer)
    assert redact.redact(f"[{outer}] [{inner}]") == f"[{MASK}] [{MASK}]"


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        # botocore's request headers, its canonical request, a presigned URL
        (
            "{'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIAQWERTYUIOP123/20240101/"
            "us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab12'}",
            "ASIAQWERTYUIOP123",
        ),
        ("X-Amz-Credential=ASIAQWERTYUIOP123%2F20240101%2Fus-east-1", "ASIAQWERTYUIOP123"),
        (
            "<Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIAQWERTYUIOP12</AWSAccessKeyId>",
            "AKIAQWERTYUIOP12",
        ),
        ("{'X-Amz-Security-Token': b'FwoGZXIvYXdzE+Tok/en=='}", "FwoGZXIvYXdzE+Tok/en=="),
        ("host:s3\nx-amz-security-token:FwoGZXIvYXdzETok\nx-amz-date:1", "FwoGZXIvYXdzETok"),
        ("?X-Amz-Security-Token=FwoG%2BZXIvYXdzE&X-Amz-Date=1", "FwoG%2BZXIvYXdzE"),
        ("Authorization: Bearer ya29.a0AfH6SMBx-y_z~", "ya29.a0AfH6SMBx-y_z~"),
        ('{"access_token": "ya29.c.Kp8BCQ", "expires_in": 3599}', "ya29.c.Kp8BCQ"),
        # traitlets' "Config changed: {...}", keyword arguments, the environment
        ("{'secret_access_key': 'wJalrXUtnFEMI/K7MDENG+bPx', 'x': 1}", "wJalrXUtnFEMI/K7MDENG+bPx"),
        ("{'session_token': 'IQoJb3JpZ2luX2VjEJr'}", "IQoJb3JpZ2luX2VjEJr"),
        ("aws_session_token=IQoJb3JpZ2luX2VjEJr, region", "IQoJb3JpZ2luX2VjEJr"),
        ("JPY_S3_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG"),
        ("{'client_secret': 'd-FL95Q19q7MQmFpd7hHD0Ty'}", "d-FL95Q19q7MQmFpd7hHD0Ty"),
        ("{'access_key_id': 'AKIAIOSFODNN7EXAMPLE'}", "AKIAIOSFODNN7EXAMPLE"),
        # botocore's "Response body:" of STS (XML, as bytes' repr) and of the instance and
        # container credential endpoints (JSON), logged before the manager sees them
        (
            "Response body:\nb'<Credentials><AccessKeyId>ASIAQWERTY</AccessKeyId>"
            "<SecretAccessKey>TmydYYBC/sCw3Fy0o+7IL87</SecretAccessKey>'",
            "TmydYYBC/sCw3Fy0o+7IL87",
        ),
        ("b'<SessionToken>FQoGZXIvYXdzEBYa+Dh/FAL=</SessionToken>'", "FQoGZXIvYXdzEBYa+Dh/FAL="),
        ('{"AccessKeyId": "ASIA1", "SecretAccessKey": "abc/def+ghi1"}', "abc/def+ghi1"),
        ('b\'{"Code": "Success", "Token": "IQoJb3Jp/Z2lu=="}\'', "IQoJb3Jp/Z2lu=="),
    ],
)
def test_credentials_are_masked_by_pattern_even_when_unregistered(text: str, leaked: str) -> None:
    masked = redact.redact(text)
    assert leaked not in masked, masked
    assert MASK in masked or "…" in masked


def test_text_without_credentials_is_unchanged() -> None:
    text = "GET /bucket/key?list-type=2 200, session_token_expiry: 12, Credential: none"
    assert redact.redact(text) == text
    listing = '{"NextContinuationToken": "1ueGcxLPRx1Tr", "KeyCount": 2}'
    assert redact.redact(listing) == listing


def test_access_key_ids_found_by_pattern_keep_four_characters() -> None:
    assert "Credential=ASIA…/2024" in redact.redact("Credential=ASIAQWERTYUIOP123/2024")
    assert "'access_key_id': 'AKIA…'" in redact.redact("{'access_key_id': 'AKIAIOSFODNN7EXAMP'}")


def test_a_json_credentials_file_is_protected(tmp_path: pytest.TempPathFactory) -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\n"
        + secrets.token_urlsafe(40)
        + "\n-----END PRIVATE KEY-----\n"
    )
    path = tmp_path / "sa.json"  # type: ignore[operator]
    path.write_text(f'{{"type": "service_account", "private_key": {_json(key)}, "x": 1}}')
    redact.protect_json_file(str(path))
    body = key.split("\n")[1]
    assert body not in redact.redact(f"loaded {key}")
    assert body not in redact.redact(f"loaded {_json(key)}")  # as printed in JSON ("\n")
    redact.protect_json_file(str(path) + ".missing")  # unreadable: ignored


def _json(value: str) -> str:
    import json

    return json.dumps(value)


# --------------------------------------------------------------------------- log records


def test_install_is_once_per_process() -> None:
    redact.install()  # importing s3contents installed it already
    factory = logging.getLogRecordFactory()
    redact.install()
    assert redact.installed()
    assert logging.getLogRecordFactory() is factory


def test_sdk_records_are_masked_when_made_even_through_propagation(
    root_text: io.StringIO,
) -> None:
    token, key_id = _secret(), "ASIA" + secrets.token_hex(8).upper()
    redact.protect(token)
    redact.protect(key_id, keep=4)
    request = _Request(
        {"Authorization": f"Credential={key_id}/x".encode(), "X-Amz-Security-Token": b"T"}
    )
    child = logging.getLogger("botocore.endpoint.deep.child")  # no handler of its own
    captured: list[logging.LogRecord] = []
    child.addFilter(lambda r: captured.append(r) or True)  # type: ignore[func-returns-value]
    child.debug("Sending http request: %s %s", request, token)
    (record,) = captured
    assert record.args == ()  # nothing left for a handler that reads args
    assert token not in str(record.msg) and key_id not in str(record.msg)
    out = root_text.getvalue()
    assert "Sending http request" in out
    assert token not in out and key_id not in out
    assert f"Credential={key_id[:4]}…/" in out


def test_other_records_format_masked(root_text: io.StringIO) -> None:
    secret = _secret()
    redact.protect(secret)
    logging.getLogger("ServerApp.some.child").info("config %r", {"password": secret})
    out = root_text.getvalue()
    assert "config {'password': '****'}" in out
    assert secret not in out


def test_tracebacks_and_stacks_are_masked(root_text: io.StringIO) -> None:
    secret = _secret()
    redact.protect(secret)
    log = logging.getLogger("tornado.application")
    try:
        try:
            raise KeyError(f"inner {secret}")
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError:
        log.exception("request failed")
    log.warning("here %s", "now", stack_info=True)
    out = root_text.getvalue()
    assert "request failed" in out and "RuntimeError: outer" in out
    assert "KeyError: 'inner ****'" in out
    assert "Stack (most recent call last)" in out
    assert secret not in out


def test_a_stack_holding_a_secret_is_masked() -> None:
    secret = _secret()
    redact.protect(secret)
    record = logging.getLogRecordFactory()(
        "x", logging.INFO, __file__, 1, "m", (), None, None, f"Stack: {secret}"
    )
    assert record.stack_info == f"Stack: {MASK}"


def test_a_broken_format_string_still_reaches_the_handler() -> None:
    record = logging.getLogRecordFactory()(
        "botocore.x", logging.DEBUG, __file__, 1, "%s %s", ("one",), None
    )
    with pytest.raises(TypeError):
        record.getMessage()  # as without redaction: logging's handleError reports it


def test_records_of_another_class_are_masked_too() -> None:
    class Custom(logging.LogRecord):
        pass

    secret = _secret()
    redact.protect(secret)
    record = Custom("app", logging.INFO, __file__, 1, "v=%s", (secret,), None)
    redact._scrub(record)
    assert isinstance(record, Custom)
    assert record.getMessage() == f"v={MASK}"
    again = Custom("app", logging.INFO, __file__, 1, "v=%s", (secret,), None)
    redact._scrub(again)
    assert type(again) is type(record)  # one masking class per record class


def test_records_without_secrets_are_untouched(root_text: io.StringIO) -> None:
    logging.getLogger("botocore.hooks").debug("Event %s: calling handler %s", "x", "y")
    logging.getLogger("app").info("%d%% done", 50)
    assert root_text.getvalue().splitlines() == [
        "botocore.hooks DEBUG Event x: calling handler y",
        "app INFO 50% done",
    ]


def test_exc_info_without_secret_keeps_the_formatters_own_rendering() -> None:
    try:
        raise ValueError("plain")
    except ValueError:
        record = logging.getLogRecordFactory()(
            "app", logging.ERROR, __file__, 1, "m", (), sys.exc_info()
        )
    assert record.exc_text is None  # left to the handler's formatter


def test_mask_key_shows_only_the_ends_of_an_access_key_id() -> None:
    assert redact.mask_key("AKIAIOSFODNN7EXAMPLE") == "AKIA…LE"
    assert redact.mask_key("shortkey") == "…"  # too short to show any of it
