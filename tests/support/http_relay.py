"""HTTP/1.1 message framing for :mod:`tests.support.proxy`: heads parsed but kept as the raw
bytes to forward unchanged, bodies relayed in ``Content-Length`` or chunked framing."""

from __future__ import annotations

import asyncio

__all__ = ["CHUNK", "Head", "read_head", "relay_body"]

CHUNK = 64 * 1024


class Head:
    """A parsed request or response head, keeping the raw bytes to forward unchanged."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.status = 0  # of the response to this request, once relayed
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0].split(" ", 2)
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            # Repeated headers matter only for framing here; keep the last one.
            self.headers[name.strip().lower()] = value.strip()

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None

    @property
    def wants_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return Head(raw)


async def _relay_length(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, kept: bytearray | None
) -> None:
    while n > 0:
        data = await reader.read(min(n, CHUNK))
        if not data:
            raise ConnectionError("peer closed mid-body")
        writer.write(data)
        if kept is not None:
            kept.extend(data)
        await writer.drain()
        n -= len(data)


async def _relay_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kept: bytearray | None
) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # Trailers, then the empty line that ends the message.
            while True:
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    break
            await writer.drain()
            return
        await _relay_length(reader, writer, size + 2, kept)  # data + CRLF


async def relay_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head, keep: bool = False
) -> bytes:
    """Relay a body in its framing; return it when ``keep`` (chunked: each chunk's data
    followed by its CRLF), else ``b""``."""
    kept = bytearray() if keep else None
    if head.chunked:
        await _relay_chunked(reader, writer, kept)
    elif head.length:
        await _relay_length(reader, writer, head.length, kept)
    return bytes(kept or b"")
