"""A cheaper timestamp parser for botocore's responses (storage layer, S3 adapter only).

botocore parses every timestamp of a response with dateutil (about 0.1 ms each): a
ListObjectsV2 page of 1000 objects carries 1000 ``LastModified`` values, parsed on the
event loop, where any CPU spent holds up every other request of the server. The XML
answers of S3 carry ISO 8601 (``2024-01-02T03:04:05.000Z``), which
:meth:`datetime.fromisoformat` parses about 50 times faster. :func:`parse_timestamp` does
that and hands everything else (RFC 1123 dates of headers such as ``Last-Modified``, epoch
numbers, times without a zone) to botocore's own parser, so the values are the same
instants botocore would give, as timezone-aware datetimes.

:func:`use_fast_timestamps` installs it in a session's ``response_parser_factory``, which
aiobotocore's clients ask for a parser for every response.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from botocore import parsers

__all__ = ["parse_timestamp", "use_fast_timestamps"]

_fromisoformat = datetime.fromisoformat
_UTC = timezone.utc


def parse_timestamp(value: Any) -> datetime:
    """``value`` as a timezone-aware datetime (UTC for ISO 8601 with a zone), as botocore's
    default parser reads it."""
    # "YYYY-MM-DDTHH:MM:SS..." only: fromisoformat also reads forms botocore reads otherwise
    # (an 8-digit number is a date to one, a Unix time to the other).
    if type(value) is str and len(value) >= 20 and value[10] == "T" and value[4] == "-":
        text = value[:-1] + "+00:00" if value[-1] == "Z" else value  # "Z": Python >= 3.11
        try:
            when = _fromisoformat(text)
        except ValueError:
            pass  # Python 3.10 reads only 3 or 6 digits of fraction
        else:
            if when.tzinfo is _UTC:
                return when
            if when.tzinfo is not None:
                return when.astimezone(_UTC)
    result: datetime = parsers.DEFAULT_TIMESTAMP_PARSER(value)
    return result


def use_fast_timestamps(session: Any) -> None:
    """Make the clients of ``session`` (a botocore or aiobotocore session) parse timestamps
    with :func:`parse_timestamp`, the clients made already included."""
    factory = session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
