"""Our HTTP handlers (web layer, the top: nothing in the package imports it but the server
extension and the managers' ``files_handler_class`` setting, by name).

* ``/files/``: jupyter_server's generic ``FilesHandler`` reads a whole file through ``get``
  (base64 in memory) before sending it. :class:`StreamingFilesHandler` sends it in pieces as
  they arrive from the store (the manager's ``download``), so a 1 GB download holds a few
  MB, and never reads from local disk.
* ``/api/contents``: :class:`ContentsHandler`, jupyter_server's own, answering 400 where it
  would answer 500; the server extension ``s3contents`` (:mod:`s3contents.serverext`)
  serves it in place of the server's.
"""

from __future__ import annotations

import contextlib
import mimetypes
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.contents import handlers as upstream
from tornado import web
from tornado.iostream import StreamClosedError

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


class ContentsHandler(upstream.ContentsHandler):
    """jupyter_server's ``/api/contents`` handler, answering 400 for request bodies it would
    answer 500 for (it calls ``.get`` on whatever JSON came, decodes before checking, and
    looks ``type`` up in a set): a body that is not UTF-8, JSON that is not an object, and
    fields of the wrong type."""

    def get_json_body(self) -> dict[str, Any] | None:
        body = self.request.body
        if body:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as err:
                raise web.HTTPError(400, "The request body is not UTF-8") from err
        model: Any = super().get_json_body()
        if model is None:
            return None
        if not isinstance(model, dict):
            raise web.HTTPError(400, "The request body must be a JSON object")
        for name in _STRING_FIELDS:
            value = model.get(name)
            if value is not None and not isinstance(value, str):
                raise web.HTTPError(400, f"{name!r} must be a string, not {type(value).__name__}")
        return model


#: jupyter_server's contents routes, with :class:`ContentsHandler` in place of its own: the
#: server extension ``s3contents`` adds them, before the server's own routes.
contents_handlers = [
    (pattern, ContentsHandler if handler is upstream.ContentsHandler else handler)
    for pattern, handler in upstream.default_handlers
]
