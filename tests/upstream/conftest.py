"""jupyter_server's own contents tests, run against ``S3ContentsManager`` on SeaweedFS.

Importing this conftest downloads (once, into ``.upstream/``) the sdist of the installed
jupyter_server and prepares its ``tests/services/contents/`` (see ``upstream_support``);
when that is impossible the run fails here, loudly. The ``test_upstream_<name>.py`` stubs
expose each upstream module; the fixtures below replace the upstream ones that build a
FileContentsManager on local disk:

* ``jp_contents_manager``, ``jp_large_contents_manager``, ``contents_manager`` (checkpoints
  tests), ``file_manager_with_notary``: an ``S3ContentsManager`` on the test's own prefix
  (``s3_config``), closed after the test;
* ``jp_file_contents_manager_class``: a factory of such managers that accepts (and keeps)
  ``root_dir``; their ``_get_os_path`` is the identity, an API path being all there is;
* ``jp_argv``: the Jupyter server of the REST tests runs ``S3ContentsManager`` on that prefix
  (set on the command line, so tests that parametrize ``jp_server_config`` keep it);
* ``contents_dir``: an :class:`~upstream_support.S3Path` of that prefix, so the upstream
  ``contents`` fixture builds its tree of notebooks, text files and blobs in the bucket.

Tests are marked ``jupyter_upstream``. ``exclusions.EXCLUDED`` lists the tests not run;
set ``S3CONTENTS_UPSTREAM_README=1`` to rewrite the "Upstream jupyter_server tests" section
of ``tests/README.md`` from it and from the run's counts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import upstream_support as support
from exclusions import EXCLUDED
from fixture_helpers import manager_factory
from jupyter_server.serverapp import ServerApp
from nbformat.sign import NotebookNotary

from s3contents import S3ContentsManager

UPSTREAM_ROOT = support.ensure_upstream()
pytest.register_assert_rewrite(support.PACKAGE)

from jupyter_server_tests.conftest import contents, folders  # noqa: E402

__all__ = ["contents", "folders"]

#: Upstream tests that run a server on another contents manager on purpose.
NOT_ON_S3 = {"test_config.py::test_async_contents_manager"}

README = Path(__file__).resolve().parent.parent / "README.md"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def s3_tree(s3_config: dict[str, str]) -> Iterator[support.BucketTree]:
    """boto3 access to the test's prefix, for the set-up and checks the tests do "on disk"."""
    client = support.make_client(
        s3_config["endpoint_url"],
        s3_config["access_key_id"],
        s3_config["secret_access_key"],
        s3_config["region_name"],
    )
    tree = support.BucketTree(client, s3_config["bucket"], s3_config["prefix"])
    support.register_tree(tree)
    yield tree
    support.unregister_tree(tree)
    client.close()


@pytest.fixture
def contents_dir(s3_tree: support.BucketTree) -> support.S3Path:
    """The root of the test's tree in the bucket (upstream: the server's root_dir)."""
    return support.S3Path(s3_tree)


@pytest.fixture
def s3_manager_factory(
    s3_config: dict[str, str],
    jp_asyncio_loop: asyncio.AbstractEventLoop,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., S3ContentsManager]]:
    """Factory of managers on the test's prefix (keyword arguments are more settings)."""

    def own_notary(cm: S3ContentsManager) -> None:
        # Signatures in a directory of the test's, not in the user's Jupyter data dir.
        cm.notary = NotebookNotary(parent=cm, data_dir=str(tmp_path_factory.mktemp("notary")))

    yield from manager_factory(S3ContentsManager, s3_config, jp_asyncio_loop, own_notary)


@pytest.fixture
def jp_contents_manager(s3_manager_factory: Callable[..., S3ContentsManager]) -> Any:
    return s3_manager_factory()


@pytest.fixture
def jp_large_contents_manager(s3_manager_factory: Callable[..., S3ContentsManager]) -> Any:
    return s3_manager_factory()


@pytest.fixture
def contents_manager(
    s3_manager_factory: Callable[..., S3ContentsManager], contents: dict[str, Any]
) -> Any:
    """test_checkpoints.py's manager, over the ``contents`` tree."""
    return s3_manager_factory()


@pytest.fixture
def file_manager_with_notary(
    s3_manager_factory: Callable[..., S3ContentsManager], tmp_path: Path
) -> Any:
    notary_dir = tmp_path / "notary"
    notary_dir.mkdir()
    cm = s3_manager_factory()
    cm.notary = NotebookNotary(data_dir=str(notary_dir))
    return cm


@pytest.fixture
def jp_file_contents_manager_class(
    s3_manager_factory: Callable[..., S3ContentsManager],
) -> Callable[..., S3ContentsManager]:
    """Stands in for the FileContentsManager classes: ``cls(root_dir=...)``."""

    def make(**settings: Any) -> S3ContentsManager:
        cm = s3_manager_factory(**settings)
        cm._get_os_path = lambda path: path  # type: ignore[attr-defined]
        return cm

    return make


@pytest.fixture
def jp_argv(s3_config: dict[str, str]) -> list[str]:
    """The REST tests' server runs S3ContentsManager on the test's prefix."""
    settings = [f"--S3ContentsManager.{name}={value}" for name, value in s3_config.items()]
    return ["--ServerApp.contents_manager_class=s3contents.S3ContentsManager", *settings]


@pytest.fixture(autouse=True)
def _close_server_contents_manager(
    request: pytest.FixtureRequest, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[None]:
    """Close the S3ContentsManager of the test's server (before pytest-jupyter drops it),
    and check that the server did run on S3ContentsManager."""
    yield
    if not ServerApp.initialized():
        return
    cm = getattr(ServerApp.instance(), "contents_manager", None)
    if isinstance(cm, S3ContentsManager):
        jp_asyncio_loop.run_until_complete(cm.close())
    elif cm is not None and _upstream_id(request.node).split("[", 1)[0] not in NOT_ON_S3:
        pytest.fail(f"the server ran on {type(cm).__name__}, not on S3ContentsManager")


# --------------------------------------------------------------------------- exclusions


def _upstream_module(item: pytest.Item) -> str | None:
    module = getattr(item, "module", None)
    return getattr(module, "UPSTREAM_MODULE", None)


def _upstream_id(item: pytest.Item) -> str:
    return f"{_upstream_module(item)}.py::{item.name}"


def _exclusion_key(item: pytest.Item) -> str | None:
    module = f"{_upstream_module(item)}.py"
    function = getattr(item, "originalname", item.name)
    for key in (f"{module}::{item.name}", f"{module}::{function}", module):
        if key in EXCLUDED:
            return key
    return None


class _Run:
    """What this run collected, excluded and ran of the upstream tests."""

    collected: list[str] = []
    upstream_ids: dict[str, str] = {}
    excluded: dict[str, list[str]] = {}
    modules: set[str] = set()


def _check_exclusion_keys() -> None:
    """Every key must name an upstream module and function that exist."""
    import importlib

    stale = []
    for key in EXCLUDED:
        module, _, rest = key.partition("::")
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
        _Run.modules.add(module)
        _Run.collected.append(item.nodeid)
        _Run.upstream_ids[item.nodeid] = _upstream_id(item)
        key = _exclusion_key(item)
        if key is None:
            keep.append(item)
        else:
            _Run.excluded.setdefault(key, []).append(_upstream_id(item))
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not _Run.collected:
        return
    ours = set(_Run.collected)
    counts: dict[str, int] = {}
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        ids = {
            r.nodeid
            for r in terminalreporter.stats.get(outcome, [])
            if getattr(r, "nodeid", None) in ours and (r.when == "call" or outcome != "passed")
        }
        counts[outcome] = len(ids)
    excluded = sum(len(v) for v in _Run.excluded.values())
    version = support.jupyter_server_version()
    line = (
        f"upstream jupyter_server {version} contents tests on S3ContentsManager: "
        f"{len(ours)} collected, {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped, {excluded} excluded"
    )
    terminalreporter.write_line(line)
    if os.environ.get("S3CONTENTS_UPSTREAM_README"):
        ran = {
            r.nodeid
            for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
            for r in terminalreporter.stats.get(outcome, [])
            if getattr(r, "nodeid", None) in ours
        }
        if _Run.modules != set(support.MODULES) or len(ran) != len(ours) - excluded:
            terminalreporter.write_line("not a full upstream run: tests/README.md unchanged")
            return
        failed_ids = sorted(
            _Run.upstream_ids[r.nodeid]
            for outcome in ("failed", "error")
            for r in terminalreporter.stats.get(outcome, [])
            if getattr(r, "nodeid", None) in ours
        )
        text = support.render_readme_section(
            version, len(ours), counts, excluded, _Run.excluded, sorted(set(failed_ids))
        )
        support.update_readme(README, text)
        terminalreporter.write_line(f"updated {README}")
