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
from tornado import web
from tornado.iostream import StreamClosedError

from .errors import ContentsError, NotFound, to_http_error
from .paths import is_hidden_path, normalize_api_path

__all__ = ["StreamingFilesHandler"]

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

    async def _resolve(self, path: str) -> tuple[Any, str, Any]:
        cm: Any = self.contents_manager
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
