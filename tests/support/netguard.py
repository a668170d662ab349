"""Keep a process on the loopback interface: no connection or name lookup anywhere else.

:func:`install_loopback_guard` makes the calling process refuse any TCP/UDP connection or name
lookup off the loopback interface (the test suite installs it for the whole run, in
``tests/conftest.py``); each refusal raises :class:`NonLoopbackNetworkError` and is also
recorded in :data:`loopback_violations`, so a test can fail even when the code under test
swallowed the error.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

__all__ = [
    "NonLoopbackNetworkError",
    "check_address",
    "install_loopback_guard",
    "is_loopback_host",
    "loopback_guard_installed",
    "loopback_violations",
    "remove_loopback_guard",
]


class NonLoopbackNetworkError(OSError):
    """Code tried to reach an address that is not on the loopback interface."""


#: One message per refused attempt, for callers to check even when the error was swallowed.
loopback_violations: list[str] = []

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def is_loopback_host(host: str | bytes | None) -> bool:
    """Whether ``host`` names this machine without a name lookup: a loopback (or unspecified)
    IP literal, ``localhost`` or ``*.localhost``; None and "" (the local host) too."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> NonLoopbackNetworkError:
    message = f"only the loopback interface may be used; refused {what}"
    loopback_violations.append(message)
    return NonLoopbackNetworkError(message)


def check_address(sock: socket.socket, address: Any) -> None:
    """Raise :class:`NonLoopbackNetworkError` if ``sock`` may not connect to ``address``."""
    inet = sock.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(address, tuple) and not is_loopback_host(address[0]):
        raise _refuse(f"connect to {address!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    check_address(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not is_loopback_host(host):
        raise _refuse(f"name lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def install_loopback_guard() -> None:
    """Make this process refuse (and record) TCP/UDP connects and name lookups off loopback.

    Covers everything built on :mod:`socket` (urllib3, botocore, aiohttp, tornado, asyncio);
    not C libraries with sockets of their own (zmq).
    """
    # Patched in place; the guards take any address (typeshed's is narrower), hence assignment.
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = _guarded_getaddrinfo


def remove_loopback_guard() -> None:
    """Undo :func:`install_loopback_guard`."""
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _real_getaddrinfo


def loopback_guard_installed() -> bool:
    """Whether :func:`install_loopback_guard` is in force."""
    return socket.socket.connect is _guarded_connect and socket.getaddrinfo is _guarded_getaddrinfo
