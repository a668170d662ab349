"""The package's own error vocabulary (bottom layer).

Storage adapters, path rules and model builders raise only these errors. The API boundary
(managers, checkpoints, handlers) turns them into HTTP errors one way, :func:`http_errors`
(a decorator) or :func:`to_http_error`, by the one table :data:`HTTP_STATUS`, so a storage
failure can never leak a provider's exception, and with it a request signature or a secret,
to a client.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

__all__ = [
    "HTTP_STATUS",
    "AlreadyExists",
    "BadCredentials",
    "BadRequest",
    "Conflict",
    "ContentsError",
    "Forbidden",
    "NotEmpty",
    "NotFound",
    "TooLarge",
    "Unavailable",
    "http_errors",
    "to_http_error",
]


class ContentsError(Exception):
    """Base class of every error this package raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, in words a user can act on. Never contains credentials.
    path : str, optional
        The API path (or object key, in the storage layer) the error is about.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class BadRequest(ContentsError):
    """The request itself is wrong: a bad path, model, format or encoding."""


class NotFound(ContentsError):
    """No file or folder at that path."""


class AlreadyExists(ContentsError):
    """Something already exists where the operation would create a new entry."""


class Conflict(ContentsError):
    """A precondition failed: the object changed under us, or a racing writer won."""


class NotEmpty(ContentsError):
    """A folder that must be empty for the operation is not."""


class Forbidden(ContentsError):
    """The storage refused access with the configured credentials."""


class BadCredentials(Forbidden):
    """The store does not accept the credentials themselves (unknown key, bad signature,
    expired token), as opposed to refusing one action to valid credentials."""


class TooLarge(ContentsError):
    """The content is larger than a configured limit."""


class Unavailable(ContentsError):
    """The storage cannot be reached, timed out, or throttles us; try again later."""


#: The one table from the package's errors to HTTP status codes.
HTTP_STATUS: dict[type[ContentsError], int] = {
    BadRequest: 400,
    NotEmpty: 400,  # jupyter_server answers 400 for "Directory not empty"
    Forbidden: 403,
    BadCredentials: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    TooLarge: 413,
    Unavailable: 503,
}


def status_of(err: ContentsError) -> int:
    """HTTP status for one of our errors (500 for an unknown subclass)."""
    for cls in type(err).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def to_http_error(err: ContentsError) -> Exception:
    """Build tornado's ``HTTPError`` for ``err``.

    tornado is imported here, not at module level, so the lower layers that import this
    module stay free of web-framework imports.
    """
    from tornado.web import HTTPError

    return HTTPError(status_of(err), err.message)


_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def http_errors(func: _F) -> _F:
    """Decorate a coroutine method of the API boundary (the managers, their checkpoints, the
    handlers' calls): the package's errors leave it as tornado's ``HTTPError``, every other
    exception as it came. The chain is kept (``from err``): a traceback shows where the
    error arose, and :mod:`s3contents.redact` masks credentials in whatever is logged."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await func(*args, **kwargs)
        except ContentsError as err:
            raise to_http_error(err) from err

    return cast(_F, wrapper)
