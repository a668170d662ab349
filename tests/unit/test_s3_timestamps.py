"""The S3 adapter's timestamp parser (``s3contents.s3.timestamps``) gives the instants
botocore's default parser gives, timezone-aware, for every form S3 answers with."""

from __future__ import annotations

from datetime import timezone

import pytest
from aiobotocore.session import get_session
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER

from s3contents.s3.timestamps import parse_timestamp, use_fast_timestamps

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
    use_fast_timestamps(session)
    parser = session.get_component("response_parser_factory").create_parser("rest-xml")
    assert parser._timestamp_parser is parse_timestamp
