"""Our HTTP handlers (web layer, the top: nothing in the package imports it but the server
extension and the managers' ``files_handler_class`` setting, by name).

* ``/files/``: jupyter_server's generic ``FilesHandler`` reads a whole file through ``get``
  (base64 in memory) before sending it. :class:`StreamingFilesHandler` sends it in pieces as
  they arrive from the store (the manager's ``download``), so a 1 GB download holds a few
  MB, and never reads from local disk.
* ``/api/contents``: :class:`ContentsHandler`, jupyter_server's own, answering 400 where it
  would answer 500, and reading and writing big JSON bodies in a worker thread; the server
  extension ``s3contents`` (:mod:`s3contents.serverext`) serves it in place of the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
from collections.abc import Awaitable
from typing import Any, cast

from jupyter_client.jsonutil import json_default
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.contents import handlers as upstream
from tornado import web
from tornado.iostream import StreamClosedError

from . import jsontext
from .contents import Download
from .errors import ContentsError, to_http_error

__all__ = ["ContentsHandler", "StreamingFilesHandler", "contents_handlers"]

AUTH_RESOURCE = "contents"
CHUNK = 1024 * 1024


def content_type_for(name: str) -> str:
    """Content type of a download, as jupyter_server's ``FilesHandler`` chooses it."""
    if name.lower().endswith(".ipynb"):
        return "application/x-ipynb+json"
    mime, encoding = mimetypes.guess_type(name)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None:
        return "application/octet-stream"
    if mime == "text/plain":
        return "text/plain; charset=UTF-8"
    return mime or "application/octet-stream"


class StreamingFilesHandler(JupyterHandler):
    """Serve ``/files/<path>`` through the contents manager's ``download`` method (ours:
    streamed from the bucket; the hybrid manager's: from the path's mount)."""

    auth_resource = AUTH_RESOURCE

    @property
    def content_security_policy(self) -> str:
        # HTML and SVG from a bucket may carry scripts: confine them to a unique origin.
        return super().content_security_policy + "; sandbox allow-scripts"

    async def _download(self, path: str) -> Download:
        download = getattr(self.contents_manager, "download", None)
        if download is None:
            raise web.HTTPError(404, "This contents manager serves no downloads")
        found: Download = await download(path)
        if self.get_argument("download", None):
            self.set_attachment_header(found.name)
        self.set_header("Content-Type", content_type_for(found.name))
        if found.size is not None:
            self.set_header("Content-Length", str(found.size))
        if found.last_modified is not None:
            self.set_header("Last-Modified", found.last_modified)
        if found.etag:
            self.set_header("Etag", f'"{found.etag}"')
        return found

    @web.authenticated
    @authorized
    async def head(self, path: str) -> None:
        self.check_xsrf_cookie()
        await self._download(path)

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        # /files/ requests must originate from the same site, as in jupyter_server.
        self.check_xsrf_cookie()
        found = await self._download(path)
        try:
            # aclosing: a client that goes away must not leave the storage response open.
            async with contextlib.aclosing(found.read(CHUNK)) as pieces:
                async for piece in pieces:
                    self.write(piece)
                    await self.flush()
        except StreamClosedError:
            return  # the client went away
        except ContentsError as err:
            if self._headers_written:
                self.log.warning("Download of %s interrupted: %s", found.name, err)
                return
            raise to_http_error(err) from err


# --------------------------------------------------------------------------- /api/contents

#: Fields of a contents request body that jupyter_server's handler uses as strings.
_STRING_FIELDS = ("type", "format", "ext", "path", "copy_from")


#: Request bodies and file or notebook models larger than this many bytes are decoded or
#: encoded in a worker thread. Below it the JSON takes about a millisecond on the loop (the C
#: parser and encoder read and write hundreds of MB/s), near the cost of the hop itself
#: (a task to the thread pool and back, and the slower piecewise functions of jsontext).
OFF_LOOP_BYTES = 256 * 1024
#: Folder models with more entries than this are encoded in a worker thread: each entry's
#: two dates pass through jupyter_client's ``json_default`` in Python (about 10 us an entry,
#: so 200 entries hold the loop about 2 ms, ten times a thread hop).
OFF_LOOP_ENTRIES = 200
#: ... and a big body only when it holds more quotes than this: what costs the C parser is
#: the number of values, not bytes (a chunk of an upload, 1 MiB of base64 in one string,
#: parses in about a millisecond). Decoded in a thread, each 1 MiB chunk of a 64 MiB upload
#: left about 10 MiB more resident (the allocator's arena of the worker thread: +32 MiB,
#: over issue 14's bound of 2 parts + 8 MiB; +22 MiB on the loop). A notebook has
#: thousands of quotes per MB.
OFF_LOOP_QUOTES = 2000


def _decode_body(body: bytes) -> tuple[str, Any]:
    """A request body as jupyter_server's ``get_json_body`` reads it, off the loop:
    ``("ok", value)``, ``("utf8", error)`` or ``("json", error)``."""
    try:
        text = body.strip().decode("utf-8")
    except UnicodeDecodeError as err:
        return "utf8", err
    try:
        return "ok", jsontext.loads(text)
    except Exception as err:  # what json.loads raises, as get_json_body catches it
        return "json", err


def _encode_model(model: dict[str, Any], etag: bool) -> tuple[bytes, str | None]:
    """The bytes ``_finish_model`` sends for ``model`` and, for a GET, the Etag tornado would
    compute of them (SHA-1 of the body, as ``RequestHandler.compute_etag``)."""
    body = jsontext.dumps(model, default=json_default).encode("utf-8")
    return body, (f'"{hashlib.sha1(body, usedforsecurity=False).hexdigest()}"' if etag else None)


def _big_model(model: dict[str, Any]) -> bool:
    """Whether the JSON of ``model`` is worth a worker thread (see :data:`OFF_LOOP_BYTES`)."""
    content = model.get("content")
    if content is None:
        return False
    if isinstance(content, list):  # a folder's entries
        return len(content) > OFF_LOOP_ENTRIES
    if isinstance(content, str):  # a file's text or base64
        return len(content) > OFF_LOOP_BYTES
    size = model.get("size")  # a notebook: its JSON is about as long as the stored bytes
    return isinstance(size, int) and size > OFF_LOOP_BYTES


class ContentsHandler(upstream.ContentsHandler):
    """jupyter_server's ``/api/contents`` handler, answering 400 for request bodies it would
    answer 500 for (it calls ``.get`` on whatever JSON came, decodes before checking, and
    looks ``type`` up in a set): a body that is not UTF-8, JSON that is not an object, and
    fields of the wrong type.

    It also keeps big JSON off the event loop, where jupyter_server's handler parses the
    request body and encodes the answer (a 10 MB notebook: tens of ms each, every other
    request of the server waiting): a body over :data:`OFF_LOOP_BYTES` is decoded in
    :meth:`prepare`, and a model over it (or a folder of more than :data:`OFF_LOOP_ENTRIES`
    entries) is encoded after the handler's method, both in a worker thread with
    :mod:`s3contents.jsontext`, whose pieces let the loop run meanwhile. The answers are
    the same bytes, headers, Etag and status codes."""

    #: The request body decoded in prepare(): (outcome, value), see _decode_body.
    _decoded: tuple[str, Any] | None = None
    #: A GET's model left by _finish_model for _finish_big_model to encode off the loop.
    _big: dict[str, Any] | None = None
    #: The Etag of the body _finish_big_model sent.
    _etag: str | None = None

    # -- request bodies -------------------------------------------------------------------
    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        await self._decode_big_body()

    async def _decode_big_body(self) -> None:
        """Decode a big PUT, POST or PATCH body in a worker thread, for ``get_json_body``
        (only an authenticated user's: the method refuses others before reading it)."""
        body = self.request.body
        if (
            self.request.method in ("PUT", "POST", "PATCH")
            and len(body) > OFF_LOOP_BYTES
            and body.count(b'"') > OFF_LOOP_QUOTES
            and self.current_user
        ):
            self._decoded = await asyncio.to_thread(_decode_body, body)

    def get_json_body(self) -> dict[str, Any] | None:
        model: Any
        if self._decoded is not None:
            model = self._decoded_body(*self._decoded)
        else:
            body = self.request.body
            if body:
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise web.HTTPError(400, "The request body is not UTF-8") from err
            model = super().get_json_body()
        if model is None:
            return None
        if not isinstance(model, dict):
            raise web.HTTPError(400, "The request body must be a JSON object")
        for name in _STRING_FIELDS:
            value = model.get(name)
            if value is not None and not isinstance(value, str):
                raise web.HTTPError(400, f"{name!r} must be a string, not {type(value).__name__}")
        return model

    def _decoded_body(self, outcome: str, value: Any) -> Any:
        """What ``get_json_body`` gives, or raises, for a body decoded in prepare()."""
        if outcome == "utf8":
            raise web.HTTPError(400, "The request body is not UTF-8") from value
        if outcome == "json":
            # Logged and answered as jupyter_server's get_json_body does.
            if self.log.isEnabledFor(logging.DEBUG):
                self.log.debug("Bad JSON: %r", self.request.body.strip().decode("utf-8"))
            self.log.error("Couldn't parse JSON", exc_info=value)
            raise web.HTTPError(400, "Invalid JSON in body of request") from value
        return value

    # -- answers --------------------------------------------------------------------------
    def _finish_model(self, model: dict[str, Any], location: bool = True) -> None:
        if self.request.method != "GET" or not _big_model(model):
            super()._finish_model(model, location)  # type: ignore[no-untyped-call]
            return
        # The headers as jupyter_server's _finish_model sets them; the body once encoded.
        if location:
            self.set_header("Location", self.location_url(model["path"]))  # type: ignore[no-untyped-call]
        self.set_header("Last-Modified", model["last_modified"])
        self.set_header("Content-Type", "application/json")
        self._big = model

    async def get(self, path: str = "") -> None:
        await cast(Awaitable[None], super().get(path))
        await self._finish_big_model()

    async def _finish_big_model(self) -> None:
        """Send the model _finish_model left, encoded in a worker thread."""
        model, self._big = self._big, None
        if model is None or self._finished:
            return
        body, self._etag = await asyncio.to_thread(_encode_model, model, True)
        self.finish(body)

    def compute_etag(self) -> str | None:
        # tornado hashes the whole body on the loop for a GET's Etag (and If-None-Match).
        if self._etag is not None:
            return self._etag
        return super().compute_etag()


#: jupyter_server's contents routes, with :class:`ContentsHandler` in place of its own: the
#: server extension ``s3contents`` adds them, before the server's own routes.
contents_handlers = [
    (pattern, ContentsHandler if handler is upstream.ContentsHandler else handler)
    for pattern, handler in upstream.default_handlers
]
