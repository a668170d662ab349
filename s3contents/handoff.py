"""What one call of a request tells the next call of the same request (API layer, no I/O).

jupyter_server's handlers make two manager calls for one request, the second asking what
the first just found out: a ``PUT`` asks ``file_exists(path)`` and then saves or creates
at that path; a ``PATCH`` renames and then asks ``get(new_path, content=False)`` for the
answer. Asking the store again costs a round trip each (a HEAD) and tells nothing new.

So a call may *hand over* what it learned about a key (the object's info, or that there is
none) and the next call of the contents API in the same task takes it (:func:`receiving`,
entered by every public method of the manager), or drops it: a handover lives for exactly
one call, and for at most :data:`MAX_AGE` seconds. It is not a cache: nothing is kept
between requests, and it answers only the question the request itself just asked.

The task is the request's: tornado runs each request's handler in the task of its
connection, one request at a time, so a handover cannot reach another client's request. A
keep-alive connection's next request starts with a public call that takes (and so drops)
whatever the previous one left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from .storage.base import ObjectInfo

__all__ = ["MAX_AGE", "hand_over", "known", "receiving"]

#: Seconds a handover stays good (a request's two calls follow each other at once).
MAX_AGE = 2.0
#: The clock of handovers (a test moves it).
_clock = time.monotonic


@dataclass
class _Handover:
    made: float = field(default_factory=lambda: _clock())
    infos: dict[str, ObjectInfo | None] = field(default_factory=dict)


#: Handed over by the call running (or just finished) for the next call.
_NEXT: ContextVar[_Handover | None] = ContextVar("s3contents_handoff_next", default=None)
#: Taken by the call running from the call before it.
_TAKEN: ContextVar[_Handover | None] = ContextVar("s3contents_handoff_taken", default=None)
#: Inside a call of the contents API (a call it makes is nested).
_INSIDE: ContextVar[bool] = ContextVar("s3contents_handoff_inside", default=False)


@contextlib.contextmanager
def receiving() -> Iterator[None]:
    """Take what the previous call handed over (or nothing), for the length of one call.

    A call made inside another (``new`` saves through ``save``) that finds nothing handed
    over keeps what its caller took: it answers the same request's question."""
    handed = _NEXT.get()
    _NEXT.set(None)
    if handed is not None and _clock() - handed.made > MAX_AGE:
        handed = None
    if handed is None and _INSIDE.get():
        handed = _TAKEN.get()
    token = _TAKEN.set(handed)
    inside = _INSIDE.set(True)
    try:
        yield
    finally:
        _INSIDE.reset(inside)
        _TAKEN.reset(token)


def hand_over(key: str, info: ObjectInfo | None) -> None:
    """Tell the next call that ``key`` holds ``info`` (``None``: no object)."""
    handed = _NEXT.get()
    if handed is None or _clock() - handed.made > MAX_AGE:
        handed = _Handover()
        _NEXT.set(handed)
    handed.infos[key] = info


def known(key: str) -> tuple[bool, ObjectInfo | None]:
    """``(True, info)`` when the previous call handed over ``key``, else ``(False, None)``."""
    handed = _TAKEN.get()
    if handed is None or key not in handed.infos:
        return False, None
    return True, handed.infos[key]
