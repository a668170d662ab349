"""Parsing S3's answers cheaply, and big ones off the event loop (S3 adapter only).

botocore parses every timestamp of a response with dateutil (about 0.1 ms each): a
ListObjectsV2 page of 1000 objects carries 1000 ``LastModified`` values, parsed on the
event loop, where any CPU spent holds up every other request of the server. The XML
answers of S3 carry ISO 8601 (``2024-01-02T03:04:05.000Z``), which
:meth:`datetime.fromisoformat` parses about 50 times faster. :func:`parse_timestamp` does
that and hands everything else (RFC 1123 dates of headers such as ``Last-Modified``, epoch
numbers, times without a zone) to botocore's own parser, so the values are the same
instants botocore would give, as timezone-aware datetimes.

Even so, a page of 1000 objects takes about 30 ms of CPU to parse (the XML, then
botocore's shapes), and a page of 10000 (SeaweedFS and MinIO allow such pages) ten times
that: held on the event loop, it would stall every other request of the server. aiobotocore
awaits its parser's ``_do_parse``, so :class:`OffLoopRestXMLParser` parses an answer larger
than :data:`OFF_LOOP_BYTES` in a worker thread, and small ones (almost every HEAD, PUT,
COPY, DELETE) at once, where a thread hop would cost more than the parse.

:func:`use_fast_parsing` installs both in a session, through its
``response_parser_factory`` component, which aiobotocore's clients ask for a parser for
every response.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from aiobotocore import parsers as aioparsers
from botocore import parsers

__all__ = ["OFF_LOOP_BYTES", "OffLoopRestXMLParser", "parse_timestamp", "use_fast_parsing"]

#: Answers longer than this are parsed in a worker thread (a LIST page of about 50 keys).
OFF_LOOP_BYTES = 16 * 1024

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


class OffLoopRestXMLParser(aioparsers.AioRestXMLParser):
    """aiobotocore's parser of S3's XML answers, parsing big ones in a worker thread."""

    async def _do_parse(self, response: dict[str, Any], shape: Any) -> Any:
        body = response.get("body")  # a stream for GetObject: its payload is not parsed
        if isinstance(body, (bytes, bytearray)) and len(body) > OFF_LOOP_BYTES:
            parsed = await asyncio.to_thread(super()._do_parse, response, shape)
        else:
            parsed = super()._do_parse(response, shape)
        if asyncio.iscoroutine(parsed) or isinstance(parsed, asyncio.Future):
            parsed = await parsed
        return parsed


class _Factory(aioparsers.AioResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "rest-xml":
            return OffLoopRestXMLParser(**self._defaults)
        return super().create_parser(protocol_name)


def use_fast_parsing(session: Any) -> None:
    """Make the clients ``session`` (an aiobotocore session) will make parse timestamps
    with :func:`parse_timestamp` and big answers off the loop (:class:`OffLoopRestXMLParser`)."""
    factory = _Factory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    session.register_component("response_parser_factory", factory)
