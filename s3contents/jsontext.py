"""JSON text of big models, made and read in a worker thread without holding the GIL long.

A worker thread keeps CPU off the event loop only where it lets go of the GIL: Python hands
the GIL over between bytecodes (every ``sys.getswitchinterval()``, 5 ms), but the C parts of
:mod:`json` encode or parse a whole document in one call, holding it throughout (a 10 MB
notebook: 10-40 ms, longer on a loaded machine). So:

* :func:`dumps` gives exactly ``json.dumps(obj, default=default)``'s text, made of many
  short C calls (a container of many items item by item, a long string in slices), so
  the event loop runs between them;
* :func:`loads` parses as ``json.loads`` does, with the pure-Python scanner for the
  structure and the C one for each string: many short calls too.

Both are slower than one C call (``loads`` about 3 times, for a notebook), so the web layer
uses them only for bodies over a size, in a thread (:mod:`s3contents.handlers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import scanner
from typing import Any

__all__ = ["dumps", "loads"]

#: Containers with more items than this, and strings longer than this many characters, are
#: encoded in pieces.
_PIECE_ITEMS = 64
_PIECE_CHARS = 64 * 1024

_encode_string = json.encoder.encode_basestring_ascii  # what json.dumps uses by default
_py_make_scanner: Callable[[json.JSONDecoder], Any] = scanner.py_make_scanner  # type: ignore[attr-defined]


def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(obj, default=default)``, character for character, in short C calls."""
    pieces: list[str] = []
    _encode(obj, default, pieces.append)
    return "".join(pieces)


def _encode(obj: Any, default: Callable[[Any], Any] | None, out: Callable[[str], Any]) -> None:
    # Exact types only: subclasses (and anything else) go to json.dumps as a whole, which
    # treats them as it always does.
    kind = type(obj)
    if kind is str and len(obj) > _PIECE_CHARS:
        out('"')
        for start in range(0, len(obj), _PIECE_CHARS):
            # Each code point is escaped on its own, so slices join to the same text.
            out(_encode_string(obj[start : start + _PIECE_CHARS])[1:-1])
        out('"')
    elif kind is dict and _big(obj):
        out("{")
        first = True
        for key, value in obj.items():
            if not first:
                out(", ")
            first = False
            # The key as json.dumps writes it (str, or a number, bool or None made one;
            # other keys raise its TypeError), without its value.
            out(json.dumps({key: None})[1:-7])
            out(": ")
            _encode(value, default, out)
        out("}")
    elif (kind is list or kind is tuple) and _big(obj):
        out("[")
        first = True
        for value in obj:
            if not first:
                out(", ")
            first = False
            _encode(value, default, out)
        out("]")
    else:
        out(json.dumps(obj, default=default))


def _big(container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Whether a container may hold much: many items, or any item that is a container or a
    long string (a notebook's few cells hold megabytes of outputs)."""
    if len(container) > _PIECE_ITEMS:
        return True
    values = container.values() if isinstance(container, dict) else container
    for value in values:
        kind = type(value)
        if kind is dict or kind is list or kind is tuple:
            return True
        if kind is str and len(value) > _PIECE_CHARS:
            return True
    return False


class _Decoder(json.JSONDecoder):
    def __init__(self) -> None:
        super().__init__()
        # The pure-Python scanner: the structure in bytecode (the GIL passes between items),
        # each string with the C scanstring, as json.loads reads it.
        self.scan_once = _py_make_scanner(self)


def loads(text: str) -> Any:
    """``json.loads(text)`` for a ``str``, the same values and errors (``ValueError``, a
    ``json.JSONDecodeError``, for bad JSON), in short C calls."""
    # A new decoder per call: the scanner keeps a memo of keys while it runs.
    return _Decoder().decode(text)
