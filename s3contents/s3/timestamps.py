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

Before parsing, botocore parses every S3 answer a first time (``_handle_200_error``, on
``before-parse.s3.*``): a whole ElementTree, only to see whether the root is ``<Error>`` or
the XML is cut off. For a listing of 10000 keys (3 MB of XML) that tree held the loop tens
of ms and made enough objects to set off full garbage collections on the loop.
:func:`handle_200_error` does the same check, for answers over :data:`OFF_LOOP_BYTES` in a
worker thread, fed in pieces (expat's C parser holds the GIL for all it is given at once)
and without building the tree.

:func:`use_fast_parsing` installs all of it in a session: the parser through its
``response_parser_factory`` component, which aiobotocore's clients ask for a parser for
every response, and the check in place of botocore's.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree

from aiobotocore import parsers as aioparsers
from botocore import handlers, parsers

__all__ = [
    "OFF_LOOP_BYTES",
    "OffLoopRestXMLParser",
    "handle_200_error",
    "looks_like_error",
    "parse_timestamp",
    "use_fast_parsing",
]

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


class _RootTag:
    """An XML parser's target keeping only the root's tag (no tree)."""

    def __init__(self) -> None:
        self.tag: str | None = None

    def start(self, tag: str, attrib: Any) -> None:
        if self.tag is None:
            self.tag = tag

    def close(self) -> str | None:
        return self.tag


#: Bytes of XML given to the parser at a time (about a millisecond each).
_FEED = 64 * 1024


def looks_like_error(body: bytes) -> bool:
    """botocore's ``_looks_like_special_case_error`` for a 200 answer's ``body``: whether it
    is not well-formed XML (cut off) or its root is ``Error``; fed in pieces, no tree."""
    target = _RootTag()
    # The parser botocore itself reads S3's answers with (and this very check).
    parser = ElementTree.XMLParser(target=target, encoding="utf-8")  # noqa: S314
    try:
        for start in range(0, len(body), _FEED):
            parser.feed(body[start : start + _FEED])
        root: Any = parser.close()
    except ElementTree.ParseError:
        return True
    return bool(root == "Error")


async def handle_200_error(operation_model: Any, response_dict: Any, **kwargs: Any) -> None:
    """botocore's ``_handle_200_error`` (an S3 error in a 200 answer becomes a 500, retried),
    with :func:`looks_like_error` in a worker thread for an answer over
    :data:`OFF_LOOP_BYTES`; botocore's own for smaller ones."""
    body = response_dict.get("body") if response_dict else None
    if (
        not isinstance(body, (bytes, bytearray))
        or len(body) <= OFF_LOOP_BYTES
        or response_dict.get("status_code") != 200
        or not handlers._should_handle_200_error(operation_model, response_dict)
    ):
        handlers._handle_200_error(operation_model, response_dict, **kwargs)
        return
    if await asyncio.to_thread(looks_like_error, bytes(body)):
        response_dict["status_code"] = 500


def use_fast_parsing(session: Any) -> None:
    """Make the clients ``session`` (an aiobotocore session) will make parse timestamps
    with :func:`parse_timestamp` and big answers off the loop (:class:`OffLoopRestXMLParser`,
    :func:`handle_200_error`)."""
    factory = _Factory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    session.register_component("response_parser_factory", factory)
    events = session.get_component("event_emitter")
    events.unregister("before-parse.s3.*", handlers._handle_200_error)
    events.register_first("before-parse.s3.*", handle_200_error)
