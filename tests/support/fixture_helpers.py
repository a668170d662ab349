"""Code the conftests share: session servers, and manager factories closed after the test.

* :func:`run_server`: the body of a session fixture for a server from ``servers.py`` or
  ``gcs_server.py``: starts it, records how long that took (``STARTED``, which the root
  conftest prints in the terminal summary), yields it and stops it.
* :func:`manager_factory`: the body of a factory fixture of contents managers: each call makes
  one from the given settings (keyword arguments override them), and every manager made is
  closed on the test's event loop after the test.
* :func:`manager_fixtures`: the usual pair of fixtures built on it, a factory (``make_cm``) and
  one manager (``cm``), for a conftest to assign: ``make_cm, cm = manager_fixtures(...)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import pytest

from tests.support.servers import ProcessServer

__all__ = ["STARTED", "manager_factory", "manager_fixtures", "run_server"]

#: (server, seconds its start took) for every server started through :func:`run_server`.
STARTED: list[tuple[ProcessServer, float]] = []

_Server = TypeVar("_Server", bound=ProcessServer)


class _Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


_Manager = TypeVar("_Manager", bound=_Closable)


def run_server(start: Callable[[], _Server]) -> Iterator[_Server]:
    """Start a server, yield it, stop it (``yield from run_server(start_x)`` in a fixture)."""
    began = time.monotonic()
    server = start()
    STARTED.append((server, time.monotonic() - began))
    try:
        yield server
    finally:
        server.stop()


def manager_factory(
    manager_class: Callable[..., _Manager],
    settings: Mapping[str, Any],
    loop: asyncio.AbstractEventLoop,
    setup: Callable[[_Manager], None] | None = None,
) -> Iterator[Callable[..., _Manager]]:
    """Yield ``make(**overrides)``, which returns ``manager_class(**settings, **overrides)``
    (passed to ``setup`` first, if given); every manager made is closed on ``loop`` after."""
    made: list[_Manager] = []

    def make(**overrides: Any) -> _Manager:
        cm = manager_class(**{**settings, **overrides})
        if setup is not None:
            setup(cm)
        made.append(cm)
        return cm

    yield make
    for cm in made:
        loop.run_until_complete(cm.close())


def manager_fixtures(
    manager_class: Callable[..., Any], settings: str, factory: str, manager: str
) -> tuple[Any, Any]:
    """Two fixtures: ``factory`` (:func:`manager_factory` of ``manager_class`` on the settings
    fixture named ``settings``) and ``manager`` (one manager it made).

    The factory uses ``jp_environ``, which keeps Jupyter's data (the notary's secret and
    signatures) in tmp_path.
    """
    name = getattr(manager_class, "__name__", "manager")

    def make_fixture(
        request: pytest.FixtureRequest,
        jp_asyncio_loop: asyncio.AbstractEventLoop,
        jp_environ: None,
    ) -> Iterator[Callable[..., Any]]:
        config = request.getfixturevalue(settings)
        yield from manager_factory(manager_class, config, jp_asyncio_loop)

    def one_fixture(request: pytest.FixtureRequest) -> Any:
        return request.getfixturevalue(factory)()

    make_fixture.__doc__ = (
        f"Factory of {name}s on the test's prefix (``{settings}``); keyword arguments "
        "override settings. Every manager made is closed after the test."
    )
    one_fixture.__doc__ = f"A {name} on the test's own prefix (from ``{factory}``)."
    return pytest.fixture(name=factory)(make_fixture), pytest.fixture(name=manager)(one_fixture)
