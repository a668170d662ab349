"""Pure path rules: API paths, object keys, folder markers, checkpoint keys, hidden files.

This is the only module that turns a Jupyter API path (``"folder/name.ipynb"``, ``/``
separated, relative to the root) into an object key and back. Every API path passes
:func:`normalize_api_path` first, which refuses anything that could name a key outside the
configured prefix, so the rest of the package can build keys by plain concatenation.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from dataclasses import dataclass
from fnmatch import translate
from urllib.parse import unquote

from .errors import BadRequest, NotFound

__all__ = [
    "CHECKPOINT_DIR",
    "MAX_KEY_BYTES",
    "RENAME_JOURNAL",
    "KeyMapper",
    "ancestors_and_self",
    "is_hidden_path",
    "join_api",
    "normalize_api_path",
    "split_api",
]

#: Folder holding checkpoints, laid out as Jupyter's local manager does.
CHECKPOINT_DIR = ".ipynb_checkpoints"
#: The claims of a folder rename in progress (:mod:`s3contents.folders`): in the folder
#: renamed, its lock (``"role": "source"``); in the new folder, its journal
#: (``"role": "destination"``). Written create-only under a lease before the first copy
#: and deleted after the last deletion: they keep racing renames and deletes apart and let
#: a rename cut short by a failure or a killed server be finished by doing it again.
RENAME_JOURNAL = ".s3contents-rename"
#: S3 refuses keys longer than this many UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: Longest single name we accept (most file systems' limit, so a bucket can be synced).
MAX_NAME_BYTES = 255


def _bad_char(ch: str) -> bool:
    # Control characters (C0, DEL, C1) and Unicode line/paragraph separators would make keys
    # that many tools and consoles display misleadingly; the backslash is a path separator on
    # Windows clients.
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0 or ch in "\\\u2028\u2029" or ch == "\ufeff"


def normalize_api_path(api_path: str | None) -> str:
    """Return the canonical form of an API path, or raise.

    Leading and trailing slashes are stripped (as Jupyter does). Raises :class:`NotFound`
    for any path that tries to leave the root (``..``, ``.``, also percent-encoded, or an
    absolute or drive-letter path once stripped) and :class:`BadRequest` for a path that
    cannot be a valid name (empty segments, control characters, backslashes, names too long).
    """
    if api_path is None:
        return ""
    if not isinstance(api_path, str):
        raise BadRequest(f"Path must be a string, not {type(api_path).__name__}")
    path = api_path.strip("/")
    if not path:
        return ""
    if any(_bad_char(ch) for ch in path):
        raise BadRequest("Path contains a control character or a backslash", path=repr(path))
    segments = path.split("/")
    for seg in segments:
        decoded = unquote(seg)
        if seg in (".", "..") or decoded.strip() in (".", "..") or "/" in decoded:
            raise NotFound(f"{path} is outside the root", path=path)
        if seg == "":
            raise BadRequest(f"Path has an empty segment: {path}", path=path)
        if not seg.replace(".", "").strip() or not decoded.replace(".", "").strip():
            # " ", "...", ". .": invisible or confusable names that many systems refuse.
            raise BadRequest(f"A name cannot be only dots and spaces: {seg!r}", path=path)
        if len(seg.encode("utf-8")) > MAX_NAME_BYTES:
            raise BadRequest(f"Name is longer than {MAX_NAME_BYTES} bytes", path=path)
    if len(segments[0]) >= 2 and segments[0][1] == ":" and segments[0][0].isalpha():
        raise NotFound(f"{path} is not a relative API path", path=path)
    return path


def split_api(api_path: str) -> tuple[str, str]:
    """``"a/b/c.txt"`` → ``("a/b", "c.txt")``; ``"c.txt"`` → ``("", "c.txt")``."""
    parent, _, name = api_path.rpartition("/")
    return parent, name


def join_api(parent: str, name: str) -> str:
    """Join a parent API path and a name."""
    return f"{parent}/{name}" if parent else name


def is_hidden_path(api_path: str) -> bool:
    """Jupyter's rule: a path is hidden when any of its names starts with a dot."""
    return any(seg.startswith(".") for seg in api_path.split("/") if seg)


def matches_globs(name: str, globs: list[str]) -> bool:
    """True when ``name`` matches one of Jupyter's ``hide_globs`` (as :func:`fnmatch.fnmatch`
    matches, with every glob in one compiled pattern: listings ask it once per entry)."""
    return bool(globs) and _globs_pattern(tuple(globs)).match(os.path.normcase(name)) is not None


@functools.lru_cache(maxsize=16)
def _globs_pattern(globs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{translate(os.path.normcase(g))})" for g in globs))


@dataclass(frozen=True)
class KeyMapper:
    """Maps API paths to object keys under ``prefix`` and back.

    Parameters
    ----------
    prefix : str
        Key prefix that is the root of the Jupyter tree (``""`` for the bucket's root).
        Leading and trailing delimiters are ignored, as in the old package.
    delimiter : str
        Separator between names in keys (``"/"`` almost always).
    marker : str
        Name of the empty object that keeps an empty folder alive (``.s3keep`` on S3,
        ``.gcskeep`` on GCS).
    """

    prefix: str = ""
    delimiter: str = "/"
    marker: str = ".s3keep"

    def __post_init__(self) -> None:
        if not self.delimiter:
            raise ValueError("delimiter must not be empty")
        parts = [p for p in self.prefix.split(self.delimiter) if p]
        for p in parts:
            if p in (".", "..") or any(_bad_char(ch) for ch in p):
                raise ValueError(f"prefix has an invalid segment: {p!r}")
        object.__setattr__(self, "prefix", self.delimiter.join(parts))

    # -- API path -> key ------------------------------------------------------------------
    @property
    def root(self) -> str:
        """Key prefix of the root folder: ``"prefix/"``, or ``""`` without a prefix."""
        return self.prefix + self.delimiter if self.prefix else ""

    def key(self, api_path: str) -> str:
        """Object key of a file at ``api_path`` (already normalised)."""
        if not api_path:
            raise BadRequest("The root is a folder, not a file")
        if self.delimiter != "/" and self.delimiter in api_path:
            raise BadRequest(f"Names may not contain the key delimiter {self.delimiter!r}")
        key = self.root + api_path.replace("/", self.delimiter)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise BadRequest(f"Path is too long for object storage: {api_path}", path=api_path)
        return key

    def dir_prefix(self, api_path: str) -> str:
        """Key prefix of everything inside the folder at ``api_path`` (ends with delimiter)."""
        if not api_path:
            return self.root
        return self.key(api_path) + self.delimiter

    def marker_key(self, api_path: str) -> str:
        """Key of the folder marker of the folder at ``api_path``."""
        return self.dir_prefix(api_path) + self.marker

    def claim_key(self, api_path: str) -> str:
        """Key of the rename claim (:data:`RENAME_JOURNAL`) of the folder at ``api_path``."""
        return self.dir_prefix(api_path) + RENAME_JOURNAL

    def checkpoint_key(self, api_path: str, checkpoint_id: str) -> str:
        """Key of checkpoint ``checkpoint_id`` of the file at ``api_path``.

        Laid out as jupyter_server's ``FileCheckpoints``:
        ``parent/.ipynb_checkpoints/<base>-<id><ext>``.
        """
        if (
            not isinstance(checkpoint_id, str)
            or not checkpoint_id
            or "/" in checkpoint_id
            or self.delimiter in checkpoint_id
            or any(_bad_char(ch) for ch in checkpoint_id)
        ):
            # The id becomes part of a key: it must not add a folder level (or a "..").
            raise BadRequest(f"Invalid checkpoint id: {checkpoint_id!r}", path=api_path)
        parent, name = split_api(api_path)
        base, ext = posixpath.splitext(name)
        return self.key(join_api(join_api(parent, CHECKPOINT_DIR), f"{base}-{checkpoint_id}{ext}"))

    # -- key -> API path ------------------------------------------------------------------
    def api_path(self, key: str) -> str:
        """API path of ``key`` (which must lie under the root)."""
        root = self.root
        if not key.startswith(root):
            raise ValueError(f"key {key!r} is outside the prefix")
        rel = key[len(root) :].strip(self.delimiter)
        return rel.replace(self.delimiter, "/") if self.delimiter != "/" else rel

    def child_name(self, folder_prefix: str, key_or_prefix: str) -> str:
        """Name of a direct child, from a key or a common prefix listed under a folder."""
        return key_or_prefix[len(folder_prefix) :].rstrip(self.delimiter)

    def rebase(self, key: str, old_prefix: str, new_prefix: str) -> str:
        """``key`` (under ``old_prefix``) moved under ``new_prefix``: a folder's copy."""
        if not key.startswith(old_prefix):
            raise ValueError(f"key {key!r} is not under {old_prefix!r}")
        return new_prefix + key[len(old_prefix) :]

    # -- names the package owns -----------------------------------------------------------
    def is_own_name(self, name: str) -> bool:
        """A folder entry the package writes for itself, never shown or served: the folder
        marker, the checkpoint folder and a rename claim."""
        return name in (self.marker, CHECKPOINT_DIR, RENAME_JOURNAL)

    def is_own_file(self, api_path: str) -> bool:
        """The API path names one of the package's own objects (a marker or a claim)."""
        return api_path.rsplit("/", 1)[-1] in (self.marker, RENAME_JOURNAL)

    def is_reserved(self, api_path: str) -> bool:
        """Paths no client may read or write: the package's own objects and everything in a
        checkpoint folder (checkpoints are reached through the checkpoints API only)."""
        return self.is_own_file(api_path) or CHECKPOINT_DIR in api_path.split("/")

    def dates_folder(self, rel: str) -> bool:
        """Whether the object at ``rel`` (its key below a folder's prefix, at any depth)
        counts for that folder's date: the user's files and folder markers do; checkpoints
        (written by autosaves), rename claims and folder entries (``sub/``) do not."""
        d = self.delimiter
        if not rel or rel.endswith(d):
            return False
        wrapped = d + rel
        return d + CHECKPOINT_DIR + d not in wrapped and not wrapped.endswith(d + RENAME_JOURNAL)

    def holds_user_files(self, folder_prefix: str, keys: list[str]) -> bool:
        """Whether any of ``keys`` (listed under ``folder_prefix``, recursively) is a file of
        the user's rather than the package's own (marker, checkpoints, claim)."""
        for key in keys:
            rel = key[len(folder_prefix) :]
            if rel and not self.is_own_name(rel.split(self.delimiter, 1)[0]):
                return True
        return False


def ancestors_and_self(api_path: str) -> list[str]:
    """``"a/b/c"`` -> ``["a", "a/b", "a/b/c"]``."""
    names = api_path.split("/")
    return ["/".join(names[: i + 1]) for i in range(len(names))]
