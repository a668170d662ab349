"""jupyter_server's own contents tests, run against our managers: ``S3ContentsManager`` on
SeaweedFS and ``GCSContentsManager`` on fake-gcs-server.

Importing this conftest downloads (once, into ``.upstream/``) the sdist of the installed
jupyter_server and prepares its ``tests/services/contents/`` (see ``upstream_support``);
when that is impossible the run fails here, loudly. The ``test_upstream_<name>.py`` stubs
expose each upstream module; every test runs once per backend (``upstream_backend``,
parametrized ``s3`` / ``gcs``, the last part of the test id). The fixtures below replace the
upstream ones that build a FileContentsManager on local disk:

* ``jp_contents_manager``, ``jp_large_contents_manager``, ``contents_manager`` (checkpoints
  tests), ``file_manager_with_notary``: a manager of the backend on the test's own prefix
  (``s3_config`` / ``gcs_config``), closed after the test;
* ``jp_file_contents_manager_class``: a factory of such managers that accepts (and keeps)
  ``root_dir``; their ``_get_os_path`` is the identity, an API path being all there is;
* ``jp_argv``: the Jupyter server of the REST tests runs that manager on that prefix (set
  on the command line, so tests that parametrize ``jp_server_config`` keep it);
* ``contents_dir``: a :class:`~upstream_support.BucketPath` of that prefix, so the upstream
  ``contents`` fixture builds its tree of notebooks, text files and blobs in the bucket.

Tests are marked ``jupyter_upstream``. ``exclusions.EXCLUDED`` lists the tests not run
(on every backend, or on one: a key ``gcs:<test id>``); set ``S3CONTENTS_UPSTREAM_README=1``
to rewrite the "Upstream jupyter_server tests" section of ``tests/README.md`` from it and
from the run's counts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp
from nbformat.sign import NotebookNotary

from s3contents.manager import ObjectStoreContentsManager
from tests.support.fixture_helpers import manager_factory
from tests.upstream import upstream_support as support
from tests.upstream.exclusions import EXCLUDED

UPSTREAM_ROOT = support.ensure_upstream()
pytest.register_assert_rewrite(support.PACKAGE)

from jupyter_server_tests.conftest import contents, folders  # noqa: E402

__all__ = ["contents", "folders"]

#: Upstream tests that run a server on another contents manager on purpose.
NOT_ON_OURS = {"test_config.py::test_async_contents_manager"}

README = Path(__file__).resolve().parent.parent / "README.md"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=list(support.BACKENDS))
def upstream_backend(request: pytest.FixtureRequest) -> support.Backend:
    """Each manager in turn: ``s3`` (S3ContentsManager on SeaweedFS), ``gcs``
    (GCSContentsManager on fake-gcs-server)."""
    return support.BACKENDS[request.param]


@pytest.fixture
def manager_config(
    upstream_backend: support.Backend, request: pytest.FixtureRequest
) -> dict[str, str]:
    """The manager's settings, on the test's own prefix."""
    config: dict[str, str] = request.getfixturevalue(upstream_backend.config_fixture)
    return config


@pytest.fixture(autouse=True)
def bucket_tree(
    upstream_backend: support.Backend, manager_config: dict[str, str]
) -> Iterator[support.BucketTree]:
    """Access to the test's prefix without the manager, for the set-up and checks the tests
    do "on disk"."""
    tree = upstream_backend.tree(manager_config)
    support.register_tree(tree)
    yield tree
    support.unregister_tree(tree)
    tree.close()


@pytest.fixture
def contents_dir(bucket_tree: support.BucketTree) -> support.BucketPath:
    """The root of the test's tree in the bucket (upstream: the server's root_dir)."""
    return support.BucketPath(bucket_tree)


@pytest.fixture
def manager_maker(
    upstream_backend: support.Backend,
    manager_config: dict[str, str],
    jp_asyncio_loop: asyncio.AbstractEventLoop,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ObjectStoreContentsManager]]:
    """Factory of managers on the test's prefix (keyword arguments are more settings)."""

    def own_notary(cm: ObjectStoreContentsManager) -> None:
        # Signatures in a directory of the test's, not in the user's Jupyter data dir.
        cm.notary = NotebookNotary(parent=cm, data_dir=str(tmp_path_factory.mktemp("notary")))

    yield from manager_factory(
        upstream_backend.manager_class, manager_config, jp_asyncio_loop, own_notary
    )


@pytest.fixture
def jp_contents_manager(manager_maker: Callable[..., ObjectStoreContentsManager]) -> Any:
    return manager_maker()


@pytest.fixture
def jp_large_contents_manager(manager_maker: Callable[..., ObjectStoreContentsManager]) -> Any:
    return manager_maker()


@pytest.fixture
def contents_manager(
    manager_maker: Callable[..., ObjectStoreContentsManager], contents: dict[str, Any]
) -> Any:
    """test_checkpoints.py's manager, over the ``contents`` tree."""
    return manager_maker()


@pytest.fixture
def file_manager_with_notary(
    manager_maker: Callable[..., ObjectStoreContentsManager], tmp_path: Path
) -> Any:
    notary_dir = tmp_path / "notary"
    notary_dir.mkdir()
    cm = manager_maker()
    cm.notary = NotebookNotary(data_dir=str(notary_dir))
    return cm


@pytest.fixture
def jp_file_contents_manager_class(
    manager_maker: Callable[..., ObjectStoreContentsManager],
) -> Callable[..., ObjectStoreContentsManager]:
    """Stands in for the FileContentsManager classes: ``cls(root_dir=...)``."""

    def make(**settings: Any) -> ObjectStoreContentsManager:
        cm = manager_maker(**settings)
        cm._get_os_path = lambda path: path  # type: ignore[attr-defined]
        return cm

    return make


@pytest.fixture
def jp_argv(upstream_backend: support.Backend, manager_config: dict[str, str]) -> list[str]:
    """The REST tests' server runs the backend's manager on the test's prefix."""
    name = upstream_backend.manager_name
    settings = [f"--{name}.{key}={value}" for key, value in manager_config.items()]
    return [f"--ServerApp.contents_manager_class={upstream_backend.manager}", *settings]


@pytest.fixture(autouse=True)
def _close_server_contents_manager(
    request: pytest.FixtureRequest,
    upstream_backend: support.Backend,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[None]:
    """Close the manager of the test's server (before pytest-jupyter drops it), and check
    that the server did run on the backend's manager."""
    yield
    if not ServerApp.initialized():
        return
    cm = getattr(ServerApp.instance(), "contents_manager", None)
    if isinstance(cm, upstream_backend.manager_class):
        jp_asyncio_loop.run_until_complete(cm.close())
    elif cm is not None and _upstream_base(request.node) not in NOT_ON_OURS:
        pytest.fail(
            f"the server ran on {type(cm).__name__}, not on {upstream_backend.manager_name}"
        )


# --------------------------------------------------------------------------- exclusions


def _upstream_module(item: pytest.Item) -> str | None:
    module = getattr(item, "module", None)
    return getattr(module, "UPSTREAM_MODULE", None)


def _backend(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params["upstream_backend"]) if callspec is not None else ""


def _upstream_name(item: pytest.Item) -> str:
    """The test's name upstream: its name here without the backend's part of the id."""
    function = getattr(item, "originalname", item.name)
    backend = _backend(item)
    case = item.callspec.id if hasattr(item, "callspec") else ""
    if case == backend:
        return function
    if not case.startswith(backend + "-"):
        raise pytest.UsageError(f"{item.nodeid}: the backend id is not first in the test id")
    return f"{function}[{case[len(backend) + 1 :]}]"


def _upstream_id(item: pytest.Item) -> str:
    return f"{_upstream_module(item)}.py::{_upstream_name(item)}"


def _upstream_base(item: pytest.Item) -> str:
    return f"{_upstream_module(item)}.py::{getattr(item, 'originalname', item.name)}"


def _exclusion_key(item: pytest.Item) -> str | None:
    module = f"{_upstream_module(item)}.py"
    for test in (_upstream_id(item), _upstream_base(item), module):
        for key in (f"{_backend(item)}:{test}", test):
            if key in EXCLUDED:
                return key
    return None


class _Run:
    """What this run collected, excluded and ran of the upstream tests."""

    #: node id -> backend id, for every upstream test collected (excluded ones too).
    collected: dict[str, str] = {}
    upstream_ids: dict[str, str] = {}
    #: exclusion key -> backend id -> upstream ids deselected by it.
    excluded: dict[str, dict[str, list[str]]] = {}
    modules: set[str] = set()


def _check_exclusion_keys() -> None:
    """Every key must name an upstream module and function that exist (and a backend)."""
    import importlib

    stale = []
    for key in EXCLUDED:
        backend, test = support.split_exclusion_key(key)
        if backend and backend not in support.BACKENDS:
            stale.append(key)
            continue
        module, _, rest = test.partition("::")
        name = module.removesuffix(".py")
        if name not in support.MODULES:
            stale.append(key)
            continue
        if rest:
            mod = importlib.import_module(f"{support.PACKAGE}.services.contents.{name}")
            if not hasattr(mod, rest.split("[", 1)[0]):
                stale.append(key)
    if stale:
        raise pytest.UsageError(f"tests/upstream/exclusions.py names unknown tests: {stale}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_exclusion_keys()
    keep: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        module = _upstream_module(item)
        if module is None:
            keep.append(item)
            continue
        backend = _backend(item)
        _Run.modules.add(module)
        _Run.collected[item.nodeid] = backend
        _Run.upstream_ids[item.nodeid] = _upstream_id(item)
        key = _exclusion_key(item)
        if key is None:
            keep.append(item)
        else:
            by_backend = _Run.excluded.setdefault(key, {})
            by_backend.setdefault(backend, []).append(_upstream_id(item))
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


_OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not _Run.collected:
        return
    version = support.jupyter_server_version()
    runs: dict[str, support.BackendRun] = {}
    ran: set[str] = set()
    for backend in support.BACKENDS.values():
        ours = {n for n, b in _Run.collected.items() if b == backend.id}
        if not ours:
            continue
        run = support.BackendRun(backend, collected=len(ours))
        for outcome in _OUTCOMES:
            reports = [
                r
                for r in terminalreporter.stats.get(outcome, [])
                if getattr(r, "nodeid", "") in ours
            ]
            ran.update(r.nodeid for r in reports)
            run.counts[outcome] = len(
                {r.nodeid for r in reports if r.when == "call" or outcome != "passed"}
            )
            if outcome in ("failed", "error"):
                run.failed_ids.update(_Run.upstream_ids[r.nodeid] for r in reports)
        run.excluded = sum(len(v.get(backend.id, [])) for v in _Run.excluded.values())
        runs[backend.id] = run
        terminalreporter.write_line(
            f"upstream jupyter_server {version} contents tests on {backend.manager_name} "
            f"({backend.server}): {run.collected} collected, {run.counts['passed']} passed, "
            f"{run.counts['failed']} failed, {run.counts['error']} errors, "
            f"{run.counts['skipped']} skipped, {run.excluded} excluded"
        )
    if os.environ.get("S3CONTENTS_UPSTREAM_README"):
        excluded = sum(run.excluded for run in runs.values())
        full = _Run.modules == set(support.MODULES) and set(runs) == set(support.BACKENDS)
        if not full or len(ran) != len(_Run.collected) - excluded:
            terminalreporter.write_line("not a full upstream run: tests/README.md unchanged")
            return
        text = support.render_readme_section(version, runs, _Run.excluded)
        support.update_readme(README, text)
        terminalreporter.write_line(f"updated {README}")
