"""``/files/`` downloads streamed from the bucket (web layer).

jupyter_server's generic ``FilesHandler`` reads a whole file through ``get`` (base64 in
memory) before sending it. This handler sends the object in pieces as they arrive from
the store, so a 1 GB download holds a few MB, and never reads from local disk.
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

from .errors import ContentsError, NotFound, to_http_error
from .paths import is_hidden_path, normalize_api_path

__all__ = ["ContentsHandler", "StreamingFilesHandler", "default_handlers", "guard_contents_api"]

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
    """Serve ``/files/<path>`` from the contents manager's storage, streamed."""

    auth_resource = AUTH_RESOURCE

    @property
    def content_security_policy(self) -> str:
        # HTML and SVG from a bucket may carry scripts: confine them to a unique origin.
        return super().content_security_policy + "; sandbox allow-scripts"

    async def _resolve(self, path: str, cm: Any = None) -> tuple[Any, str, Any]:
        """(manager, API path, object info) of ``path`` in ``cm`` (default: the server's
        contents manager; the hybrid manager's handler passes a mount's manager)."""
        if cm is None:
            cm = self.contents_manager
        try:
            api_path = normalize_api_path(path)
            if not api_path:
                raise NotFound("Not a file")
            if (not cm.allow_hidden and is_hidden_path(api_path)) or cm._reserved(api_path):
                raise NotFound("Not found")
            key = cm.keys.key(api_path)
            info = await cm.storage.head(key)
        except ContentsError as err:
            raise to_http_error(err) from None
        return cm, api_path, info

    def _set_file_headers(self, api_path: str, info: Any) -> None:
        name = api_path.rsplit("/", 1)[-1]
        if self.get_argument("download", None):
            self.set_attachment_header(name)
        self.set_header("Content-Type", content_type_for(name))
        self.set_header("Content-Length", str(info.size))
        self.set_header("Last-Modified", info.last_modified)
        if info.etag:
            self.set_header("Etag", f'"{info.etag}"')

    @web.authenticated
    @authorized
    async def head(self, path: str) -> None:
        self.check_xsrf_cookie()
        _, api_path, info = await self._resolve(path)
        self._set_file_headers(api_path, info)

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        # /files/ requests must originate from the same site, as in jupyter_server.
        self.check_xsrf_cookie()
        cm, api_path, info = await self._resolve(path)
        self._set_file_headers(api_path, info)
        try:
            # aclosing: a client that goes away must not leave the storage response open.
            async with contextlib.aclosing(cm.storage.stream(info.key, CHUNK)) as pieces:
                async for piece in pieces:
                    self.write(piece)
                    await self.flush()
        except StreamClosedError:
            return  # the client went away
        except ContentsError as err:
            if self._headers_written:
                self.log.warning("Download of %s interrupted: %s", api_path, err)
                return
            raise to_http_error(err) from None


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
            except UnicodeDecodeError:
                raise web.HTTPError(400, "The request body is not UTF-8") from None
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


#: jupyter_server's contents routes, with :class:`ContentsHandler` in place of its own.
default_handlers = [
    (pattern, ContentsHandler if handler is upstream.ContentsHandler else handler)
    for pattern, handler in upstream.default_handlers
]


def guard_contents_api(server_app: Any) -> None:
    """Serve ``/api/contents`` with :class:`ContentsHandler`.

    Adds this module to the server's ``extra_services``, whose routes come before the
    default ones; the contents manager calls it when it is made, before the server builds its
    web application. Does nothing without a server (or one with no such setting).
    """
    if server_app is None or not getattr(server_app, "has_trait", lambda _: False)(
        "extra_services"
    ):
        return
    if __name__ not in server_app.extra_services:
        server_app.extra_services = [*server_app.extra_services, __name__]
