"""What the two contents managers share: the bucket's (:mod:`s3contents.manager`) and the
hybrid one (:mod:`s3contents.hybrid`). API layer, below both; no storage here.

Jupyter's naming rules for copies and untitled files, the ``preferred_dir`` check that
cannot ask the store yet, calling a manager that may be sync or async, and what a download
is (:class:`Download`).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traitlets import TraitError

from .errors import AlreadyExists, ContentsError
from .paths import join_api

__all__ = [
    "Download",
    "call",
    "copy_name",
    "create_unique",
    "free_names",
    "preferred_dir",
]

#: ``-Copy`` or ``-Copy3`` before a dot: taken off a name before a copy gets its own number.
_COPY_SUFFIX = re.compile(r"\-Copy\d*\.")


def copy_name(name: str) -> str:
    """The name a copy starts from: ``a-Copy2.ipynb`` copies as ``a.ipynb`` would."""
    return _COPY_SUFFIX.sub(".", name)


def free_names(filename: str, insert: str) -> Iterator[str]:
    """``filename``, then ``filename`` numbered 1, 2, ... after ``insert``, as Jupyter
    numbers them: before the last dot of a notebook, before the first dot otherwise
    (``Untitled1.ipynb``, ``a-Copy1.tar.gz``, ``Untitled Folder 1``)."""
    basename, dot, ext = filename.rpartition(".")
    if ext != "ipynb":
        basename, dot, ext = filename.partition(".")
    suffix = dot + ext
    yield f"{basename}{suffix}"
    i = 1
    while True:
        yield f"{basename}{insert}{i}{suffix}"
        i += 1


async def create_unique(
    taken: set[str],
    filename: str,
    insert: str,
    create: Callable[[str], Awaitable[dict[str, Any]]],
    dir_path: str = "",
) -> dict[str, Any]:
    """``create`` the first of :func:`free_names` in ``dir_path`` not in ``taken``.

    ``create`` writes create-only and raises :class:`~s3contents.errors.AlreadyExists`
    when another client took the name since ``taken`` was listed: the next name is tried,
    up to 100 times.
    """
    attempts = 0
    for name in free_names(filename, insert):
        if name in taken:
            continue
        try:
            return await create(join_api(dir_path, name))
        except AlreadyExists:
            taken.add(name)
            attempts += 1
            if attempts > 100:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def preferred_dir(manager: Any, value: Any, normalize: Callable[[str], str]) -> str:
    """A manager's ``preferred_dir`` setting, normalised by ``normalize`` and passed on to the
    server (frontends read it there, relative to ``root_dir``).

    Jupyter checks that the folder exists while the configuration is still being loaded,
    before the storage settings are all known: here it is only normalised (a missing
    folder shows as a 404 in the file browser)."""
    try:
        normal = normalize(str(value))
    except ContentsError as err:
        raise TraitError(f"preferred_dir: {err}") from err
    if manager.parent is not None and normal:
        with contextlib.suppress(TraitError, AttributeError):
            manager.parent.preferred_dir = os.path.join(manager.root_dir, *normal.split("/"))
    return normal


async def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async manager method; await the result when it is awaitable."""
    result = func(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@dataclass(frozen=True)
class Download:
    """A file as ``/files/`` sends it: its metadata, and its bytes in pieces, read only
    when ``read(piece_size)`` is iterated (a HEAD reads nothing). Made by the managers'
    ``download`` method, for :class:`s3contents.handlers.StreamingFilesHandler`."""

    name: str
    size: int | None
    last_modified: datetime | None
    etag: str | None
    read: Callable[[int], AsyncGenerator[bytes, None]]
