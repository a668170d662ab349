"""The Jupyter server extension ``s3contents``: sweeps at start, closes at stop.

Enabled by our contents managers themselves (:func:`s3contents.serverhooks.attach`), so
nothing needs configuring; ``ServerApp.jpserver_extensions = {"s3contents": False}`` turns it
off. It adds no setting. Its routes are jupyter_server's contents routes with the hardened
``/api/contents`` handler (:data:`s3contents.handlers.contents_handlers`), ahead of the
server's own. It runs

* at load: kernels are told where their notebook is in the bucket
  (:func:`~s3contents.serverhooks.tell_kernels`);
* at start, once the event loop runs: a freeze of the objects the server loaded, for the
  garbage collector (:func:`~s3contents.serverhooks.freeze_loaded_objects`: its full
  collections otherwise hold the event loop hundreds of ms); a sweep of orphaned uploads
  under each manager's prefix, then one every ``upload_timeout`` seconds
  (:meth:`~s3contents.manager.ObjectStoreContentsManager.start_sweeping_uploads`); and, for
  a server without a terminal, a SIGINT handler that stops it as SIGTERM does
  (:func:`~s3contents.serverhooks.stop_on_sigint`: otherwise the server would exit on a
  ``KeyboardInterrupt``, without running this extension's stop hook);
* at stop: each manager's ``close()`` (its uploads in progress aborted in the bucket, the
  sweeps stopped, the connections closed), which jupyter_server itself never calls.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.extension.application import ExtensionApp

from .handlers import contents_handlers
from .serverhooks import (
    EXTENSION,
    close_all,
    freeze_loaded_objects,
    managers_of,
    stop_on_sigint,
    tell_kernels,
)

__all__ = ["S3ContentsExtension"]


class S3ContentsExtension(ExtensionApp):
    """Start and stop hooks of the server for our contents managers."""

    name = EXTENSION
    description = "Sweeps orphaned uploads at start and aborts uploads in progress at stop"
    load_other_extensions = True

    def initialize_handlers(self) -> None:
        # Routes added by an extension come before the server's own (tornado tries the
        # rules added last first), so these serve /api/contents.
        self.handlers.extend(contents_handlers)

    def initialize_settings(self) -> None:
        tell_kernels(self.serverapp)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        for manager in managers_of(serverapp):
            manager.start_sweeping_uploads()
        stop_on_sigint(serverapp)
        freeze_loaded_objects()

    async def stop_extension(self) -> None:
        await close_all(managers_of(self.serverapp))


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": __name__, "app": S3ContentsExtension}]
