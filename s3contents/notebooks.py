"""Large notebooks off the event loop: what a worker thread computes, and how Jupyter's own
trust methods use it on the loop (API layer, beside the manager).

Opening or saving a 10 MB notebook costs tens of milliseconds of CPU: parsing, converting,
validating, serialising, and hashing the whole notebook for its signature (nbformat's
``NotebookNotary``, an HMAC over every cell). The manager runs all of it in worker threads
above a size (:func:`notebook_over`); only the signature store's lookups stay on the loop,
since its SQLite connection belongs to the loop's thread. Jupyter's ``check_and_sign`` and
``mark_trusted_cells`` (which subclasses may override) still decide, with the notary's
methods answering what the thread computed (:func:`precomputed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from . import models

__all__ = ["convert_and_check", "notebook_over", "parse_and_sign", "precomputed"]


def _text_len(value: Any) -> int:
    """Characters of a notebook text field (a string, or a list of lines)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(line) for line in value if isinstance(line, str))
    return 0


def notebook_over(content: Any, limit: int) -> bool:
    """Whether the notebook ``content`` (a model's, not checked yet) holds more than ``limit``
    characters of sources and outputs: one pass over its cells, stopping once over."""
    cells = content.get("cells") if isinstance(content, dict) else None
    if not isinstance(cells, list):
        return False
    total = 0
    for cell in cells:
        total += 100  # its keys and metadata
        if not isinstance(cell, dict):
            continue
        total += _text_len(cell.get("source"))
        outputs = cell.get("outputs")
        for output in outputs if isinstance(outputs, list) else ():
            if isinstance(output, dict):
                total += _text_len(output.get("text"))
                data = output.get("data")
                if isinstance(data, dict):
                    total += sum(_text_len(v) for v in data.values())
        if total > limit:
            return True
    return False


def parse_and_sign(
    data: bytes,
    api_path: str,
    validation_error: dict[str, Any],
    compute_signature: Callable[[Any], str],
) -> tuple[Any, str]:
    """In a worker thread: the stored notebook, and its signature for the trust check."""
    nb = models.parse_notebook(data, api_path, validation_error)
    return nb, compute_signature(nb)


def convert_and_check(
    content: Any,
    api_path: str,
    check_cells: Callable[[Any], Any],
    compute_signature: Callable[[Any], str],
) -> tuple[Any, bool | None, str]:
    """In a worker thread: a model's notebook, whether its cells are trusted (``check_cells``
    takes the ``trusted`` marks off, as Jupyter's ``check_and_sign`` does first) and its
    signature once they are off; ``None`` when the check raised (invalid cells)."""
    nb = models.notebook_from_model(content, api_path)
    try:
        trusted = bool(check_cells(nb))
        signature = compute_signature(nb) if trusted else ""
    except Exception:
        return nb, None, ""
    return nb, trusted, signature


@contextlib.contextmanager
def precomputed(notary: Any, **methods: Callable[[Any], Any]) -> Iterator[None]:
    """The notary's ``methods`` answering what a worker thread computed, while Jupyter's
    own trust methods run on the loop (synchronously: nothing else on the loop runs
    meanwhile, and worker threads are handed the notary's methods, looked up outside)."""
    for name, method in methods.items():
        setattr(notary, name, method)
    try:
        yield
    finally:
        for name in methods:
            with contextlib.suppress(AttributeError):
                delattr(notary, name)
