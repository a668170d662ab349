"""Fetch jupyter_server's own contents tests and adapt them to our contents managers.

The tests are those of ``tests/services/contents/`` in the sdist of the *installed*
jupyter_server version. :func:`ensure_upstream` downloads that sdist with
``pip download`` into ``.upstream/`` at the repository root (git-ignored, never committed)
and copies the few files we need out of it as the package ``jupyter_server_tests``:

* ``tests/__init__.py``, ``tests/utils.py``, ``tests/services/__init__.py`` and every
  ``tests/services/contents/*.py``, with ``tests.`` renamed ``jupyter_server_tests.``;
* from ``tests/conftest.py``, only ``dirs`` and the ``contents`` and ``folders`` fixtures
  (the rest of it sets environment variables and loads mock extensions that the contents
  tests do not need).

Each ``tests/upstream/test_upstream_<name>.py`` exposes one upstream module to pytest with
:func:`load_upstream`, which also swaps the module's FileContentsManager fixtures for the
bucket ones of ``tests/upstream/conftest.py`` and rebinds the module-level helpers that write
to local disk (``_make_dir``, ``pathlib``) to versions that write to the bucket.

Where a test sets up or checks state "on disk", :class:`BucketPath` stands in for the
``pathlib.Path`` it expects: a path-like view of the test's prefix in the bucket, written
and read by a :class:`BucketTree` (boto3 on S3, the JSON API on fake-gcs-server; not the
manager under test), with folders made as the manager makes them (an empty marker object,
``.s3keep`` or ``.gcskeep``).

:data:`BACKENDS` names the managers the tests run against, each on its test server.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import json
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
#: Git-ignored cache of downloaded sdists and the test files taken out of them.
CACHE = REPO / ".upstream"
#: Name under which the upstream ``tests`` package is imported.
PACKAGE = "jupyter_server_tests"

#: Upstream ``tests/services/contents/`` modules, each exposed by ``test_upstream_<name>.py``.
MODULES = (
    "test_api",
    "test_checkpoints",
    "test_config",
    "test_fileio",
    "test_largefilemanager",
    "test_manager",
    "test_manager_no_hash",
)

#: Module-level fixtures of the upstream modules that build a FileContentsManager (or a
#: server on one); they are dropped so that ``tests/upstream/conftest.py``'s S3 versions
#: of the same name apply. A name missing upstream is an error: the upstream tests changed
#: and would otherwise silently run against the local file system.
OVERRIDDEN_FIXTURES: dict[str, tuple[str, ...]] = {
    "test_api": ("jp_argv",),
    "test_checkpoints": ("contents_manager",),
    "test_largefilemanager": ("jp_large_contents_manager",),
    "test_manager": (
        "jp_contents_manager",
        "jp_file_contents_manager_class",
        "file_manager_with_notary",
    ),
}

#: What we take from the upstream ``tests/conftest.py``.
CONFTEST_NAMES = ("dirs", "contents", "folders")


class UpstreamTestsUnavailable(RuntimeError):
    """The upstream tests could not be downloaded or prepared: the run must fail."""


# --------------------------------------------------------------------------- fetching


def jupyter_server_version() -> str:
    return importlib.metadata.version("jupyter_server")


def _download_sdist(version: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name = f"jupyter_server-{version}.tar.gz"
    sdist = dest / name
    if sdist.is_file():
        return sdist
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--no-input",
        f"jupyter_server=={version}",
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UpstreamTestsUnavailable(f"`{' '.join(cmd)}` could not run: {err}") from None
    if proc.returncode != 0 or not sdist.is_file():
        raise UpstreamTestsUnavailable(
            f"Could not download the jupyter_server {version} sdist, needed for the upstream "
            f"contents tests in tests/upstream (exit {proc.returncode}).\n"
            f"Command: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n"
            "Run with network access to the package index once (the sdist is then cached "
            "in .upstream/), or leave these tests out with --ignore=tests/upstream."
        )
    return sdist


def _rename_package(source: str) -> str:
    """``tests.x`` -> ``jupyter_server_tests.x`` (imports and import strings)."""
    return re.sub(r"(?<![\w.])tests\.(?=[A-Za-z_])", f"{PACKAGE}.", source)


def _conftest_subset(source: str) -> str:
    """The module-level definitions named in ``CONFTEST_NAMES`` of the upstream conftest."""
    tree = ast.parse(source)
    found: dict[str, str] = {}
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        for name in names:
            if name in CONFTEST_NAMES:
                start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                lines = source.splitlines()[start - 1 : node.end_lineno]
                found[name] = "\n".join(lines)
    missing = [n for n in CONFTEST_NAMES if n not in found]
    if missing:
        raise UpstreamTestsUnavailable(f"upstream tests/conftest.py no longer defines {missing}")
    header = (
        '"""Taken from jupyter_server\'s tests/conftest.py by tests/upstream."""\n\n'
        "import pytest\nfrom nbformat import writes\nfrom nbformat.v4 import new_notebook\n"
    )
    return header + "\n\n" + "\n\n\n".join(found[n] for n in CONFTEST_NAMES) + "\n"


def _extract(sdist: Path, version: str, target: Path) -> None:
    top = f"jupyter_server-{version}/tests/"
    wanted = {"__init__.py", "utils.py", "conftest.py", "services/__init__.py"}
    files: dict[str, str] = {}
    try:
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                if not member.isfile() or not member.name.startswith(top):
                    continue
                rel = member.name[len(top) :]
                is_contents = re.fullmatch(r"services/contents/\w+\.py", rel) is not None
                if rel in wanted or is_contents:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    files[rel] = handle.read().decode("utf-8")
    except (tarfile.TarError, EOFError, OSError) as err:
        sdist.unlink()
        raise UpstreamTestsUnavailable(f"{sdist} is damaged ({err}); removed it") from None
    missing = sorted(wanted - set(files))
    if missing or "services/contents/__init__.py" not in files:
        raise UpstreamTestsUnavailable(f"{sdist.name} lacks tests/{missing}")
    found = {posixpath.splitext(posixpath.basename(r))[0] for r in files if "contents/" in r}
    found.discard("__init__")
    if set(found) != set(MODULES):
        raise UpstreamTestsUnavailable(
            f"jupyter_server {version}'s tests/services/contents/ has modules {sorted(found)}; "
            f"tests/upstream exposes {sorted(MODULES)}: add or remove a "
            "tests/upstream/test_upstream_<name>.py and update MODULES"
        )
    files["conftest.py"] = _conftest_subset(files["conftest.py"])
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for rel, text in files.items():
        path = staging / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_rename_package(text), encoding="utf-8")
    (staging / "STAMP").write_text(_stamp(version), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _stamp(version: str) -> str:
    # Any change to this module prepares the files again (from the cached sdist).
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return f"jupyter_server {version}, upstream_support {digest}\n"


def ensure_upstream() -> Path:
    """Download and prepare the upstream tests (once); put them on ``sys.path``.

    Returns the directory that holds the ``jupyter_server_tests`` package. Raises
    :class:`UpstreamTestsUnavailable` when they cannot be had.
    """
    version = jupyter_server_version()
    target = CACHE / f"jupyter_server-{version}"
    stamp = target / "STAMP"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != _stamp(version):
        sdist = _download_sdist(version, CACHE / "sdist")
        _extract(sdist, version, target)
    if str(target) not in sys.path:
        sys.path.append(str(target))
    return target


def load_upstream(module: str) -> dict[str, Any]:
    """The namespace a ``test_upstream_<module>.py`` stub takes over."""
    mod = importlib.import_module(f"{PACKAGE}.services.contents.{module}")
    patch = _MODULE_PATCHES.get(module)
    if patch is not None:
        patch(mod)
    dropped = OVERRIDDEN_FIXTURES.get(module, ())
    for name in dropped:
        if not hasattr(mod, name):
            raise UpstreamTestsUnavailable(
                f"upstream {module}.py no longer defines the fixture {name!r} that "
                "tests/upstream replaces: check what its tests now run against"
            )
    ns = {k: v for k, v in vars(mod).items() if not k.startswith("__") and k not in dropped}
    marks = ns.get("pytestmark", [])
    marks = list(marks) if isinstance(marks, list | tuple) else [marks]
    ns["pytestmark"] = [*marks, pytest.mark.jupyter_upstream]
    ns["UPSTREAM_MODULE"] = module
    ns.update(_MODULE_FIXTURES.get(module, {}))
    return ns


# --------------------------------------------------------------------------- the bucket view


class BucketTree:
    """Synchronous access to the tree under ``bucket``/``prefix``, without the manager.

    Keys are ``<prefix>/<api path>``, and a folder exists when some key lies under it (an
    empty one holds the manager's folder marker). Subclasses talk to one kind of store.
    """

    scheme = ""
    marker = ""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @property
    def url(self) -> str:
        root = f"{self.scheme}://{self.bucket}"
        return f"{root}/{self.prefix}" if self.prefix else root

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def is_file(self, rel: str) -> bool:
        raise NotImplementedError

    def is_dir(self, rel: str) -> bool:
        raise NotImplementedError

    def put(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, rel: str) -> bytes:
        raise NotImplementedError

    def make_marker(self, rel: str) -> None:
        self.put(f"{rel}/{self.marker}", b"")

    def close(self) -> None:
        """Release what the tree holds (a client)."""


class S3Tree(BucketTree):
    """A :class:`BucketTree` on an S3 server, through boto3 (path-style addressing)."""

    scheme = "s3"
    marker = ".s3keep"

    def __init__(self, config: dict[str, str]) -> None:
        super().__init__(config["bucket"], config["prefix"])
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=config["endpoint_url"],
            aws_access_key_id=config["access_key_id"],
            aws_secret_access_key=config["secret_access_key"],
            region_name=config["region_name"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def is_file(self, rel: str) -> bool:
        if not rel:
            return False
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        except ClientError as err:
            if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def is_dir(self, rel: str) -> bool:
        if not rel:
            return True
        page = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self.key(rel) + "/", MaxKeys=1
        )
        return bool(page.get("KeyCount") or page.get("Contents"))

    def put(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data)

    def get(self, rel: str) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"]
        except ClientError as err:
            if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"{self.url}/{rel}") from None
            raise
        with body:
            return bytes(body.read())

    def close(self) -> None:
        self.client.close()


# Plain HTTP to the emulator never goes through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class GCSTree(BucketTree):
    """A :class:`BucketTree` on fake-gcs-server, through the JSON API over plain HTTP."""

    scheme = "gs"
    marker = ".gcskeep"

    def __init__(self, config: dict[str, str]) -> None:
        super().__init__(config["bucket"], config["prefix"])
        self.endpoint = config["endpoint_url"].rstrip("/")

    def _open(self, method: str, path: str, params: dict[str, Any], data: bytes | None) -> bytes:
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        request = urllib.request.Request(f"{self.endpoint}/{path}?{query}", data, method=method)
        with _DIRECT.open(request, timeout=30) as response:
            return bytes(response.read())

    def _object(self, rel: str) -> str:
        bucket = urllib.parse.quote(self.bucket, safe="")
        return f"storage/v1/b/{bucket}/o/{urllib.parse.quote(self.key(rel), safe='')}"

    def is_file(self, rel: str) -> bool:
        if not rel:
            return False
        try:
            self._open("GET", self._object(rel), {}, None)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return False
            raise
        return True

    def is_dir(self, rel: str) -> bool:
        if not rel:
            return True
        path = f"storage/v1/b/{urllib.parse.quote(self.bucket, safe='')}/o"
        body = self._open("GET", path, {"prefix": self.key(rel) + "/", "maxResults": 1}, None)
        return bool(json.loads(body).get("items"))

    def put(self, rel: str, data: bytes) -> None:
        path = f"upload/storage/v1/b/{urllib.parse.quote(self.bucket, safe='')}/o"
        self._open("POST", path, {"uploadType": "media", "name": self.key(rel)}, data)

    def get(self, rel: str) -> bytes:
        try:
            return self._open("GET", self._object(rel), {"alt": "media"}, None)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise FileNotFoundError(f"{self.url}/{rel}") from None
            raise


#: Trees of the running tests, by ``BucketTree.url`` (for ``pathlib.Path("s3://...")``).
_TREES: dict[str, BucketTree] = {}


def register_tree(tree: BucketTree) -> None:
    _TREES[tree.url] = tree


def unregister_tree(tree: BucketTree) -> None:
    _TREES.pop(tree.url, None)


def tree_for(bucket: str, prefix: str) -> BucketTree:
    for tree in _TREES.values():
        if (tree.bucket, tree.prefix) == (bucket, prefix.strip("/")):
            return tree
    raise AssertionError(f"no bucket tree registered for {bucket}/{prefix}")


# --------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class Backend:
    """A contents manager the upstream tests run against, on the server the tests start."""

    id: str  #: test id: ``s3``, ``gcs``
    manager: str  #: import path of the manager class
    server: str  #: the server it runs on, for messages and the README
    config_fixture: str  #: the fixture giving the manager's settings on the test's prefix
    tree: Callable[[dict[str, str]], BucketTree]

    @property
    def manager_class(self) -> type[Any]:
        module, _, name = self.manager.rpartition(".")
        return getattr(importlib.import_module(module), name)

    @property
    def manager_name(self) -> str:
        return self.manager.rpartition(".")[2]


BACKENDS: dict[str, Backend] = {
    "s3": Backend("s3", "s3contents.S3ContentsManager", "SeaweedFS", "s3_config", S3Tree),
    "gcs": Backend(
        "gcs", "s3contents.gcs.GCSContentsManager", "fake-gcs-server", "gcs_config", GCSTree
    ),
}


def _clean(rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"BucketPath does not resolve '..': {rel!r}")
    return "/".join(parts)


class BucketPath:
    """The part of ``pathlib.Path`` the upstream tests use, over a :class:`BucketTree`.

    It deliberately has no ``__fspath__``: a test that hands it to ``open()`` or ``os``
    fails instead of quietly writing to local disk.
    """

    def __init__(self, tree: BucketTree, rel: str = "") -> None:
        self.tree = tree
        self.rel = _clean(rel)

    # -- pure path operations ---------------------------------------------------------
    def joinpath(self, *parts: Any) -> BucketPath:
        rel = self.rel
        for part in parts:
            text = str(part)
            rel = _clean(text) if text.startswith("/") else f"{rel}/{text}"
        return BucketPath(self.tree, rel)

    def __truediv__(self, other: Any) -> BucketPath:
        return self.joinpath(other)

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def parent(self) -> BucketPath:
        return BucketPath(self.tree, self.rel.rsplit("/", 1)[0] if "/" in self.rel else "")

    def relative_to(self, other: BucketPath) -> PurePosixPath:
        if other.tree is not self.tree:
            raise ValueError(f"{self} is not under {other}")
        if not other.rel:
            return PurePosixPath(self.rel)
        if self.rel != other.rel and not self.rel.startswith(other.rel + "/"):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.rel[len(other.rel) + 1 :])

    def __str__(self) -> str:
        return f"{self.tree.url}/{self.rel}" if self.rel else self.tree.url

    def __repr__(self) -> str:
        return f"BucketPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BucketPath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    # -- the bucket -------------------------------------------------------------------
    def exists(self) -> bool:
        return self.is_dir() or self.is_file()

    def is_file(self) -> bool:
        return self.tree.is_file(self.rel)

    def is_dir(self) -> bool:
        return self.tree.is_dir(self.rel)

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if self.is_file():
            raise FileExistsError(str(self))
        if self.is_dir():
            if exist_ok:
                return
            raise FileExistsError(str(self))
        parent = self.parent
        if not parent.is_dir():
            if not parents:
                raise FileNotFoundError(str(parent))
            parent.mkdir(parents=True, exist_ok=True)
        self.tree.make_marker(self.rel)

    def write_bytes(self, data: bytes) -> int:
        if not self.rel or self.is_dir():
            raise IsADirectoryError(str(self))
        if not self.parent.is_dir():
            raise FileNotFoundError(str(self.parent))
        self.tree.put(self.rel, bytes(data))
        return len(data)

    def write_text(
        self,
        data: str,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> int:
        if newline not in (None, "", "\n"):
            data = data.replace("\n", newline)
        self.write_bytes(data.encode(encoding or "utf-8", errors or "strict"))
        return len(data)

    def read_bytes(self) -> bytes:
        return self.tree.get(self.rel)

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")


def as_path(value: Any) -> Any:
    """``pathlib.Path`` for the upstream modules: ``s3://`` and ``gs://`` strings of a running
    test's tree become :class:`BucketPath`; anything else is a real ``pathlib.Path``."""
    text = str(value)
    if isinstance(value, BucketPath):
        return value
    if text.startswith(("s3://", "gs://")):
        for url in sorted(_TREES, key=len, reverse=True):
            if text == url or text.startswith(url + "/"):
                return BucketPath(_TREES[url], text[len(url) :])
        raise AssertionError(f"{text} is not in the bucket tree of a running test")
    return Path(value)


def _pathlib_shim() -> types.ModuleType:
    import pathlib

    shim = types.ModuleType("pathlib", "pathlib, with Path() also understanding bucket URLs")
    shim.__dict__.update({k: v for k, v in vars(pathlib).items() if not k.startswith("__")})
    shim.Path = as_path  # type: ignore[attr-defined]
    return shim


# --------------------------------------------------------------------------- module patches


def make_dir_in_bucket(contents_manager: Any, api_path: str) -> None:
    """``test_manager._make_dir``: ``os.makedirs`` of the folder, in the manager's bucket."""
    tree = tree_for(contents_manager.bucket, contents_manager.prefix)
    BucketPath(tree, api_path).mkdir(parents=True, exist_ok=True)


def _patch_test_api(mod: types.ModuleType) -> None:
    # _check_created and test_rename check `pathlib.Path(str(contents_dir) + path).is_file()`.
    mod.pathlib = _pathlib_shim()  # type: ignore[attr-defined]


def _patch_test_manager(mod: types.ModuleType) -> None:
    mod._make_dir = make_dir_in_bucket  # type: ignore[attr-defined]


_MODULE_PATCHES: dict[str, Callable[[types.ModuleType], None]] = {
    "test_api": _patch_test_api,
    "test_manager": _patch_test_manager,
}


@pytest.fixture
def _bucket_tmp_path(contents_dir: BucketPath) -> BucketPath:
    """``tmp_path`` for test_largefilemanager.py, whose manager's root it is: the test's
    prefix in the bucket (``test_save_in_subdirectory`` makes its folder there)."""
    return contents_dir


_MODULE_FIXTURES: dict[str, dict[str, Any]] = {
    "test_largefilemanager": {"tmp_path": _bucket_tmp_path},
}


# --------------------------------------------------------------------------- tests/README.md

README_START = "<!-- upstream-tests:start -->"
README_END = "<!-- upstream-tests:end -->"

_README_INTRO = """\
## Upstream jupyter_server tests

`tests/upstream/` runs jupyter_server's own contents tests (`tests/services/contents/` of the
sdist of the installed jupyter_server, fetched with `pip download` when the tests are
collected and cached in the git-ignored `.upstream/`) against each of our managers, as part
of the normal `pytest` run (marker `jupyter_upstream`; leave them out with
`--ignore=tests/upstream`): every test runs twice, on `S3ContentsManager` with SeaweedFS
(test ids `[s3-...]`) and on `GCSContentsManager` with fake-gcs-server (`[gcs-...]`; `-k`
selects one, e.g. `-k "gcs"`). A run that cannot download the sdist fails.

How the upstream tests are pointed at the bucket (`tests/upstream/conftest.py`,
`tests/upstream/upstream_support.py`):

* the fixtures that build a `FileContentsManager` (`jp_contents_manager`,
  `jp_file_contents_manager_class`, `jp_large_contents_manager`, the checkpoints tests'
  `contents_manager`, `file_manager_with_notary`) give the backend's manager on the test's
  own prefix, closed after the test; the REST tests' server gets it through `jp_argv`;
* `contents_dir` is a path-like view of that prefix (`BucketPath`, written and read with
  boto3 on S3 and the JSON API on GCS, not through the manager), so the upstream `contents`
  fixture builds its tree in the bucket; `pathlib.Path(...)` in test_api.py, `_make_dir` in
  test_manager.py and `tmp_path` in test_largefilemanager.py go to the bucket the same way,
  and `_get_os_path` of the managers that stand in for the FileContentsManager class is the
  identity on API paths.

Only tests about the local file system itself, or about `FileContentsManager`'s own
internals, are left out (a key `gcs:<test>` or `s3:<test>` would leave a test out on one
backend only, for a limitation of its server). The list lives in
`tests/upstream/exclusions.py`; this section is generated from it and from a full run by
`S3CONTENTS_UPSTREAM_README=1 pytest tests/upstream`.
"""


def split_exclusion_key(key: str) -> tuple[str, str]:
    """``"gcs:test_x.py::test_y"`` -> ``("gcs", "test_x.py::test_y")``; no backend: ``""``."""
    backend, sep, test = key.partition(":")
    if not sep or test.startswith(":"):
        return "", key
    return backend, test


@dataclass
class BackendRun:
    """What a run did of the upstream tests on one backend."""

    backend: Backend
    collected: int
    counts: dict[str, int] = field(default_factory=dict)
    excluded: int = 0
    failed_ids: set[str] = field(default_factory=set)


def _base(test_id: str) -> str:
    return test_id.split("[", 1)[0]


def render_readme_section(
    version: str, runs: dict[str, BackendRun], excluded_ids: dict[str, dict[str, list[str]]]
) -> str:
    from tests.upstream.exclusions import EXCLUDED

    lines = [README_START, _README_INTRO, f"Last full run, jupyter_server {version}:", ""]
    for run in runs.values():
        failed = run.counts["failed"] + run.counts["error"]
        lines.append(
            f"* `{run.backend.manager_name}` on {run.backend.server} (`[{run.backend.id}-...]`): "
            f"**{run.collected} collected, {run.counts['passed']} passed, {failed} failed, "
            f"{run.excluded} excluded**"
        )
    for run in runs.values():
        if run.failed_ids:
            lines += ["", f"### Failing in that run on {run.backend.id}", ""]
            lines += [f"* `{test_id}`" for test_id in sorted(run.failed_ids)]
    ids = list(runs)
    cases = " / ".join(ids)
    lines += ["", "### Excluded tests", "", f"| Upstream test | Cases ({cases}) | Why excluded |"]
    lines.append("|---|---|---|")
    for key, reason in EXCLUDED.items():
        backend, test = split_exclusion_key(key)
        by_backend = excluded_ids.get(key, {})
        count = " / ".join(str(len(by_backend.get(b, []))) for b in ids)
        where = f" (on {backend} only)" if backend else ""
        if test.endswith(".py"):
            all_ids = [i for found in by_backend.values() for i in found]
            names = sorted({_base(i).split("::", 1)[1] for i in all_ids})
            listed = ", ".join(f"`{n}`" for n in names)
            lines.append(f"| `{test}`{where}, all of it: {listed} | {count} | {reason} |")
        else:
            lines.append(f"| `{test}`{where} | {count} | {reason} |")
    lines += ["", README_END, ""]
    return "\n".join(lines)


def update_readme(readme: Path, section: str) -> None:
    """Replace the generated section of ``readme`` (appending it the first time)."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Tests\n"
    start, end = text.find(README_START), text.find(README_END)
    if start != -1 and end != -1:
        tail = text[end + len(README_END) :].lstrip("\n")
        text = text[:start] + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    readme.write_text(text, encoding="utf-8")
