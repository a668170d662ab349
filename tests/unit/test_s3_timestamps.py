"""The S3 adapter's timestamp parser (``s3contents.s3.timestamps``) gives the instants
botocore's default parser gives, timezone-aware, for every form S3 answers with."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone
from typing import Any

import botocore.session
import pytest
from aiobotocore.session import get_session
from botocore import handlers
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER

from s3contents.s3 import timestamps
from s3contents.s3.timestamps import OffLoopRestXMLParser, parse_timestamp, use_fast_parsing

#: What the XML bodies carry (ListObjectsV2, CopyObject, ListParts, ListMultipartUploads):
#: read by datetime.fromisoformat, as UTC.
ISO_WITH_ZONE = [
    "2024-01-02T03:04:05.000Z",
    "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05.123Z",
    "2024-01-02T03:04:05.123456Z",
    "2024-01-02T03:04:05+00:00",
    "2024-01-02T03:04:05.250+02:00",
    "2024-01-02T23:59:59-05:30",
    "1999-12-31T23:59:59.999Z",
]
#: Fractions Python 3.10's fromisoformat does not read (botocore's parser does them there).
ODD_FRACTIONS = [
    "2024-01-02T03:04:05.123456789Z",  # nanoseconds: the microseconds kept, the rest dropped
    "2024-01-02T03:04:05.5Z",
]
#: Handed to botocore's parser: headers (HeadObject's Last-Modified: RFC 1123), epoch
#: seconds, times without a zone, a space for the "T".
OTHERS = [
    "Tue, 02 Jan 2024 03:04:05 GMT",
    "Wed, 31 Dec 1999 23:59:59 GMT",
    "1704164645",
    "1704164645.5",
    "2024-01-02T03:04:05",
    "2024-01-02 03:04:05Z",
]


@pytest.mark.parametrize("text", ISO_WITH_ZONE + ODD_FRACTIONS + OTHERS)
def test_same_instant_as_botocore(text: str) -> None:
    ours, theirs = parse_timestamp(text), DEFAULT_TIMESTAMP_PARSER(text)
    assert ours == theirs
    assert ours.microsecond == theirs.microsecond
    assert (ours.tzinfo is None) == (theirs.tzinfo is None)


@pytest.mark.parametrize("text", ISO_WITH_ZONE)
def test_iso_8601_with_a_zone_is_read_as_utc(text: str) -> None:
    assert parse_timestamp(text).tzinfo is timezone.utc


def test_numbers_are_epoch_times_as_for_botocore() -> None:
    assert parse_timestamp(1704164645) == DEFAULT_TIMESTAMP_PARSER(1704164645)


def test_garbage_fails_as_in_botocore() -> None:
    with pytest.raises(ValueError):
        DEFAULT_TIMESTAMP_PARSER("2024-13-45T99:99:99Z")
    with pytest.raises(ValueError):
        parse_timestamp("2024-13-45T99:99:99Z")


def test_installed_in_the_session_parsers() -> None:
    session = get_session()
    use_fast_parsing(session)
    parser = session.get_component("response_parser_factory").create_parser("rest-xml")
    assert isinstance(parser, OffLoopRestXMLParser)
    assert parser._timestamp_parser is parse_timestamp


def _listing(n: int) -> dict[str, Any]:
    rows = "".join(
        f"<Contents><Key>p/nb-{i:05d}.ipynb</Key><LastModified>2024-01-02T03:04:05.000Z"
        f"</LastModified><ETag>&quot;e{i}&quot;</ETag><Size>{i}</Size></Contents>"
        for i in range(n)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
        f"<Prefix>p/</Prefix><KeyCount>{n}</KeyCount><MaxKeys>10000</MaxKeys>"
        f"<IsTruncated>false</IsTruncated>{rows}</ListBucketResult>"
    ).encode()
    return {"status_code": 200, "headers": {}, "body": body, "context": {}}


@pytest.mark.parametrize(("entries", "threaded"), [(2, False), (500, True)])
def test_big_answers_are_parsed_in_a_thread(
    monkeypatch: pytest.MonkeyPatch, entries: int, threaded: bool
) -> None:
    session = get_session()
    use_fast_parsing(session)
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("ListObjectsV2").output_shape
    parser = session.get_component("response_parser_factory").create_parser("rest-xml")
    loop_thread: list[int] = []
    parse_threads: list[int] = []
    original = parser.__class__.__mro__[1]._do_parse

    def spy(self: object, response: object, shape: object) -> object:
        parse_threads.append(threading.get_ident())
        return original(self, response, shape)

    monkeypatch.setattr(parser.__class__.__mro__[1], "_do_parse", spy)

    async def main() -> dict[str, Any]:
        loop_thread.append(threading.get_ident())
        return await parser.parse(_listing(entries), shape)

    parsed = asyncio.run(main())
    assert len(parsed["Contents"]) == entries
    assert parsed["Contents"][-1]["LastModified"] == datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )
    assert (parse_threads[0] != loop_thread[0]) is threaded
    assert len(_listing(entries)["body"]) > timestamps.OFF_LOOP_BYTES or not threaded


ERROR_BODY = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code></Error>'


@pytest.mark.parametrize(
    "body",
    [
        _listing(500)["body"],
        _listing(500)["body"][:-200],  # cut off
        _listing(3)["body"],
        ERROR_BODY,
        ERROR_BODY + b" " * 20000,
        b'<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Code>x</Code></Error>',
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>',
        b"<a><b></a>",
        b"not xml",
        b"<?xml version='1.0'?>",
    ],
    ids=range(10),
)
def test_error_check_is_botocores(body: bytes) -> None:
    assert timestamps.looks_like_error(body) is handlers._looks_like_special_case_error(200, body)


def test_big_answers_are_checked_for_errors_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    session = get_session()
    use_fast_parsing(session)
    events = session.get_component("event_emitter")
    model = botocore.session.get_session().get_service_model("s3")
    operation = model.operation_model("ListObjectsV2")
    threads: list[int] = []
    original = timestamps.looks_like_error

    def spy(body: bytes) -> bool:
        threads.append(threading.get_ident())
        return original(body)

    monkeypatch.setattr(timestamps, "looks_like_error", spy)

    async def main(response: dict[str, Any]) -> int:
        await events.emit(
            "before-parse.s3.ListObjectsV2",
            operation_model=operation,
            response_dict=response,
            customized_response_dict={},
        )
        return int(response["status_code"])

    ok, cut = _listing(500), _listing(500)
    cut["body"] = cut["body"][:-200]
    small_error = {"status_code": 200, "headers": {}, "body": ERROR_BODY, "context": {}}
    assert [asyncio.run(main(r)) for r in (ok, cut, small_error)] == [200, 500, 500]
    assert len(threads) == 2  # the big ones; the small one by botocore's own, on the loop
    assert threading.get_ident() not in threads
