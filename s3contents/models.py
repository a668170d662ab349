"""Pure builders of Jupyter contents models from object metadata and bytes.

No I/O here: the manager fetches, these functions shape. Every model carries all the keys
jupyter_server's ``validate_model`` requires, with timezone-aware UTC times taken from the
store's own ``LastModified`` (object storage keeps no creation time, so ``created`` is the
last write, as for a file rewritten in place).
"""

from __future__ import annotations

import hashlib
import mimetypes
from base64 import b64decode, encodebytes
from binascii import Error as BinasciiError
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import nbformat

from .errors import BadRequest
from .paths import join_api

if TYPE_CHECKING:
    from .storage.base import ObjectInfo

__all__ = [
    "NOTEBOOK_MIMETYPE",
    "UNKNOWN_TIME",
    "content_type",
    "decode_content",
    "directory_from_listing",
    "directory_model",
    "encode_notebook",
    "file_model",
    "guess_mimetype",
    "hash_fields",
    "kind",
    "parse_notebook",
]

NOTEBOOK_MIMETYPE = "application/x-ipynb+json"
#: Time reported when the store has none (a folder that exists only through its keys),
#: the same fallback jupyter_server uses for an unreadable modification time.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _name(api_path: str) -> str:
    return api_path.rsplit("/", 1)[-1]


def _base(
    api_path: str, type_: str, last_modified: datetime | None, size: int | None
) -> dict[str, Any]:
    return {
        "name": _name(api_path),
        "path": api_path,
        "type": type_,
        "writable": True,
        "created": last_modified,
        "last_modified": last_modified,
        "mimetype": None,
        "content": None,
        "format": None,
        "size": size,
        "hash": None,
        "hash_algorithm": None,
    }


def directory_model(
    api_path: str, last_modified: datetime | None, content: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A directory model; ``content`` is its listing (models without content) or ``None``."""
    model = _base(api_path, "directory", last_modified, None)
    if content is not None:
        model["content"] = content
        model["format"] = "json"
    return model


def guess_mimetype(name: str) -> str | None:
    """MIME type from the file name, as jupyter_server guesses it."""
    return mimetypes.guess_type(name)[0]


def kind(api_path: str, type_: str | None = None) -> str:
    """``notebook`` or ``file``: the type asked for, else by the name, as Jupyter does."""
    if type_ in ("notebook", "file"):
        return type_
    return "notebook" if api_path.endswith(".ipynb") else "file"


def content_type(api_path: str) -> str:
    """The Content-Type an object is stored with."""
    if api_path.endswith(".ipynb"):
        return NOTEBOOK_MIMETYPE
    return guess_mimetype(api_path) or "application/octet-stream"


def directory_from_listing(
    api_path: str,
    files: Iterable[tuple[str, ObjectInfo]],
    dirs: Iterable[str],
    listable: Callable[[str], bool],
    content: bool,
    date: datetime | None = None,
    dir_dates: Mapping[str, datetime | None] | None = None,
) -> dict[str, Any]:
    """The model of the folder ``api_path`` from one listing of it: its direct ``files``
    as (name, object) and the names of its subfolders; entries whose name ``listable``
    refuses are left out (the package's own objects, hidden files).

    A folder has no date of its own in object storage: ``date`` is the one its listing
    found (``folders.Folders.dated_listing``: the newest write in the first page of its
    tree), ``dir_dates`` its subfolders'; the epoch where there is none.
    """
    entries: list[dict[str, Any]] | None = None
    if content:
        entries = [
            file_model(join_api(api_path, name), kind(name), o.last_modified, o.size)
            for name, o in files
            if listable(name)
        ]
        dated = dir_dates or {}
        entries += [
            directory_model(join_api(api_path, d), dated.get(d) or UNKNOWN_TIME)
            for d in dirs
            if listable(d)
        ]
    return directory_model(api_path, date or UNKNOWN_TIME, entries)


def file_model(
    api_path: str, type_: str, last_modified: datetime | None, size: int | None
) -> dict[str, Any]:
    """A file or notebook model without content."""
    model = _base(api_path, type_, last_modified, size)
    if type_ == "file":
        model["mimetype"] = guess_mimetype(_name(api_path))
    return model


def hash_fields(data: bytes, algorithm: str) -> dict[str, str]:
    """``hash`` and ``hash_algorithm`` of the stored bytes."""
    h = hashlib.new(algorithm)
    h.update(data)
    return {"hash": h.hexdigest(), "hash_algorithm": algorithm}


def decode_content(data: bytes, fmt: str | None, api_path: str) -> tuple[str, str]:
    """Content for a file model in ``fmt``: ``text`` (UTF-8), ``base64``, or ``None`` (guess).

    Raises :class:`BadRequest` when ``text`` is asked of bytes that are not UTF-8.
    """
    if fmt not in (None, "text", "base64"):
        raise BadRequest(f"Format must be 'text' or 'base64', not {fmt!r}", path=api_path)
    if fmt in (None, "text"):
        try:
            return data.decode("utf-8"), "text"
        except UnicodeDecodeError as err:
            if fmt == "text":
                raise BadRequest(f"{api_path} is not UTF-8 encoded", path=api_path) from err
    return encodebytes(data).decode("ascii"), "base64"


def encode_content(content: Any, fmt: Any, api_path: str) -> bytes:
    """Bytes to store for a file model's ``content`` in ``fmt`` (``text`` or ``base64``)."""
    if fmt not in ("text", "base64"):
        raise BadRequest(
            "Must specify format of file contents as 'text' or 'base64'", path=api_path
        )
    if not isinstance(content, str):
        raise BadRequest(
            f"File content must be a string, not {type(content).__name__}", path=api_path
        )
    try:
        if fmt == "text":
            return content.encode("utf-8")
        # Strict: a character outside the alphabet is an error, not skipped (line breaks,
        # which base64 writers insert, are the only thing ignored).
        return b64decode("".join(content.split()).encode("ascii"), validate=True)
    except (UnicodeError, BinasciiError, ValueError) as err:
        raise BadRequest(f"Encoding error saving {api_path}: {err}", path=api_path) from err


def parse_notebook(
    data: bytes, api_path: str, validation_error: dict[str, Any] | None = None
) -> nbformat.NotebookNode:
    """Parse stored bytes as a notebook (converted to nbformat 4)."""
    try:
        nb: nbformat.NotebookNode = nbformat.reads(
            data.decode("utf-8"), as_version=4, capture_validation_error=validation_error
        )
    except Exception as err:  # nbformat raises many kinds for unreadable input
        raise BadRequest(f"Unreadable Notebook: {api_path} {err!r}", path=api_path) from err
    return nb


def notebook_from_model(content: Any, api_path: str) -> nbformat.NotebookNode:
    """A notebook node from a model's ``content``; 400 when it is not a notebook."""
    if not isinstance(content, dict):
        raise BadRequest("Notebook content must be a JSON object", path=api_path)
    version = content.get("nbformat")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not isinstance(content.get("cells"), list)
    ):
        raise BadRequest(
            "Notebook content needs an integer 'nbformat' and a list of 'cells'", path=api_path
        )
    if version != nbformat.current_nbformat:
        # Saved as given (no conversion): only the current major version can be written.
        raise BadRequest(
            f"Only nbformat {nbformat.current_nbformat} notebooks can be saved, not {version}",
            path=api_path,
        )
    if not isinstance(content.get("metadata"), dict):
        raise BadRequest("Notebook content needs a 'metadata' object", path=api_path)
    try:
        nb: nbformat.NotebookNode = nbformat.from_dict(content)
    except Exception as err:
        raise BadRequest(f"Invalid notebook content: {err}", path=api_path) from err
    return nb


def encode_notebook(
    nb: nbformat.NotebookNode, validation_error: dict[str, Any] | None = None
) -> bytes:
    """Serialise a notebook exactly as jupyter_server writes it to disk."""
    try:
        text: str = nbformat.writes(
            nb, version=nbformat.NO_CONVERT, capture_validation_error=validation_error
        )
    except (TypeError, ValueError, KeyError, AttributeError, ImportError, RecursionError) as err:
        raise BadRequest(f"Notebook cannot be serialised: {err}") from err
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")
