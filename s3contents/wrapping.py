"""What the manager tells its own public methods, and a wrapper's calls of them (API layer).

Internal calls go through the public, overridable methods (``new`` through ``save``,
``rename`` through ``rename_file``, a listing's entries through ``get``), as jupyter_server's
own managers do, so that a wrapper such as jupytext sees every operation. What the calling
method knows travels to the called one in context variables: which paths ``save`` must
write create-only, whether ``rename_file`` / ``delete_file`` met a folder, and what a
listing or save already knows of the store, so that a wrapper's ``get`` called back for each
entry costs no request (docs/architecture.md, "Wrappers").
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator

from tornado.web import HTTPError

from .errors import AlreadyExists
from .paths import split_api
from .storage.base import ObjectInfo

__all__ = ["CREATING", "KNOWN", "WAS_DIR", "Known", "creating", "known", "name_taken"]


#: The paths that the running ``new`` / ``copy`` creates, each with whether its parent folder
#: was just listed: ``save`` writes them create-only (never over an existing file).
CREATING: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar(
    "s3contents_creating", default=None
)
#: What the running ``rename`` / ``delete`` learnt from ``rename_file`` / ``delete_file``:
#: whether each path was a folder.
WAS_DIR: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar(
    "s3contents_renamed", default=None
)


@dataclasses.dataclass
class Known:
    """What the running listing or save knows of the store, for the wrapper's ``get`` it
    calls back (jupytext types each entry of a listing, and a save's reply, through its
    ``get``, as on local disk): files by API path, folders, and ``complete``, a folder whose
    every entry is among them (a name in it that is neither does not exist)."""

    files: dict[str, ObjectInfo]
    dirs: set[str] = dataclasses.field(default_factory=set)
    complete: str | None = None

    def _absent(self, api_path: str) -> bool:
        return (
            self.complete is not None
            and api_path != self.complete
            and split_api(api_path)[0] == self.complete
        )

    def is_file(self, api_path: str) -> bool | None:
        if api_path in self.files:
            return True
        if api_path in self.dirs or api_path == self.complete or self._absent(api_path):
            return False
        return None

    def is_dir(self, api_path: str) -> bool | None:
        if api_path in self.dirs or api_path == self.complete:
            return True
        if api_path in self.files or self._absent(api_path):
            return False
        return None


#: Set while the manager calls a wrapper's ``get`` back for models it has the facts of.
KNOWN: contextvars.ContextVar[Known | None] = contextvars.ContextVar(
    "s3contents_known", default=None
)


def known(api_path: str, reserved: Callable[[str], bool]) -> Known | None:
    """What the running listing or save knows of ``api_path`` (never of reserved names)."""
    known = KNOWN.get()
    if known is None or reserved(api_path):
        return None
    return known


@contextlib.contextmanager
def name_taken() -> Iterator[None]:
    """A create-only write lost to another client, seen through a public method (where it
    became HTTP 409), is :class:`AlreadyExists` again: the untitled or copy name search
    (``contents.create_unique``) moves on to the next name."""
    try:
        yield
    except HTTPError as err:
        cause: BaseException | None = err
        for _ in range(8):  # through wrappers that re-raise it
            if cause is None or isinstance(cause, AlreadyExists):
                break
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, AlreadyExists):
            raise cause from err
        raise


@contextlib.contextmanager
def creating(api_path: str, *, parent_known: bool = False) -> Iterator[None]:
    """``save`` writes ``api_path`` create-only within this block (see :data:`CREATING`)."""
    current = CREATING.get() or {}
    known = parent_known or current.get(api_path, False)
    token = CREATING.set({**current, api_path: known})
    try:
        yield
    finally:
        CREATING.reset(token)
