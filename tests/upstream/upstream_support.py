"""Fetch jupyter_server's own contents tests and adapt them to ``S3ContentsManager``.

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
S3 ones of ``tests/upstream/conftest.py`` and rebinds the module-level helpers that write
to local disk (``_make_dir``, ``pathlib``) to versions that write to the bucket.

Where a test sets up or checks state "on disk", :class:`S3Path` stands in for the
``pathlib.Path`` it expects: a path-like view of the test's prefix in the bucket, written
and read with boto3 (not through the manager under test), with folders made as the
manager makes them (an empty ``.s3keep`` marker object).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import types
from collections.abc import Callable
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


def make_client(endpoint_url: str, access_key_id: str, secret_access_key: str, region: str) -> Any:
    """A boto3 S3 client (path-style addressing, as the test servers need)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


class BucketTree:
    """Synchronous, boto3-based access to the tree under ``bucket``/``prefix``.

    Independent of the manager under test: keys are ``<prefix>/<api path>``, and a folder
    exists when some key lies under it (an empty one holds the ``.s3keep`` marker).
    """

    marker = ".s3keep"

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

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

    def make_marker(self, rel: str) -> None:
        self.put(f"{rel}/{self.marker}", b"")


#: Trees of the running tests, by ``BucketTree.url`` (for ``pathlib.Path("s3://...")``).
_TREES: dict[str, BucketTree] = {}


def register_tree(tree: BucketTree) -> None:
    _TREES[tree.url] = tree


def unregister_tree(tree: BucketTree) -> None:
    _TREES.pop(tree.url, None)


def tree_for(bucket: str, prefix: str) -> BucketTree:
    url = BucketTree(None, bucket, prefix).url
    try:
        return _TREES[url]
    except KeyError:
        raise AssertionError(f"no bucket tree registered for {url}") from None


def _clean(rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"S3Path does not resolve '..': {rel!r}")
    return "/".join(parts)


class S3Path:
    """The part of ``pathlib.Path`` the upstream tests use, over a :class:`BucketTree`.

    It deliberately has no ``__fspath__``: a test that hands it to ``open()`` or ``os``
    fails instead of quietly writing to local disk.
    """

    def __init__(self, tree: BucketTree, rel: str = "") -> None:
        self.tree = tree
        self.rel = _clean(rel)

    # -- pure path operations ---------------------------------------------------------
    def joinpath(self, *parts: Any) -> S3Path:
        rel = self.rel
        for part in parts:
            text = str(part)
            rel = _clean(text) if text.startswith("/") else f"{rel}/{text}"
        return S3Path(self.tree, rel)

    def __truediv__(self, other: Any) -> S3Path:
        return self.joinpath(other)

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def parent(self) -> S3Path:
        return S3Path(self.tree, self.rel.rsplit("/", 1)[0] if "/" in self.rel else "")

    def relative_to(self, other: S3Path) -> PurePosixPath:
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
        return f"S3Path({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Path) and str(self) == str(other)

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
    """``pathlib.Path`` for the upstream modules: ``s3://`` strings of a running test's tree
    become :class:`S3Path`; anything else is a real ``pathlib.Path``."""
    text = str(value)
    if isinstance(value, S3Path):
        return value
    if text.startswith("s3://"):
        for url in sorted(_TREES, key=len, reverse=True):
            if text == url or text.startswith(url + "/"):
                return S3Path(_TREES[url], text[len(url) :])
        raise AssertionError(f"{text} is not in the bucket tree of a running test")
    return Path(value)


def _pathlib_shim() -> types.ModuleType:
    import pathlib

    shim = types.ModuleType("pathlib", "pathlib, with Path() also understanding s3:// paths")
    shim.__dict__.update({k: v for k, v in vars(pathlib).items() if not k.startswith("__")})
    shim.Path = as_path  # type: ignore[attr-defined]
    return shim


# --------------------------------------------------------------------------- module patches


def make_dir_in_bucket(contents_manager: Any, api_path: str) -> None:
    """``test_manager._make_dir``: ``os.makedirs`` of the folder, in the manager's bucket."""
    tree = tree_for(contents_manager.bucket, contents_manager.prefix)
    S3Path(tree, api_path).mkdir(parents=True, exist_ok=True)


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
def _bucket_tmp_path(contents_dir: S3Path) -> S3Path:
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
collected and cached in the git-ignored `.upstream/`) against `S3ContentsManager` on
SeaweedFS, as part of the normal `pytest` run (marker `jupyter_upstream`; leave them out
with `--ignore=tests/upstream`). A run that cannot download the sdist fails.

How the upstream tests are pointed at the bucket (`tests/upstream/conftest.py`,
`tests/upstream/upstream_support.py`):

* the fixtures that build a `FileContentsManager` (`jp_contents_manager`,
  `jp_file_contents_manager_class`, `jp_large_contents_manager`, the checkpoints tests'
  `contents_manager`, `file_manager_with_notary`) give an `S3ContentsManager` on the test's
  own prefix, closed after the test; the REST tests' server gets it through `jp_argv`;
* `contents_dir` is a path-like view of that prefix (`S3Path`, written and read with boto3,
  not through the manager), so the upstream `contents` fixture builds its tree in the
  bucket; `pathlib.Path(...)` in test_api.py, `_make_dir` in test_manager.py and `tmp_path`
  in test_largefilemanager.py go to the bucket the same way, and `_get_os_path` of the
  managers that stand in for the FileContentsManager class is the identity on API paths.

Only tests about the local file system itself, or about `FileContentsManager`'s own
internals, are left out. The list lives in `tests/upstream/exclusions.py`; this section is
generated from it and from a full run by `S3CONTENTS_UPSTREAM_README=1 pytest tests/upstream`.
"""


def _base(test_id: str) -> str:
    return test_id.split("[", 1)[0]


def render_readme_section(
    version: str,
    collected: int,
    counts: dict[str, int],
    excluded: int,
    excluded_ids: dict[str, list[str]],
    failed_ids: list[str],
) -> str:
    from exclusions import EXCLUDED

    failed = counts["failed"] + counts["error"]
    lines = [README_START, _README_INTRO]
    lines.append(
        f"Last full run, jupyter_server {version}: **{collected} collected, "
        f"{counts['passed']} passed, {failed} failed, {excluded} excluded**."
    )
    if failed_ids:
        lines += ["", "### Failing in that run", ""]
        lines += [f"* `{test_id}`" for test_id in sorted(failed_ids)]
    lines += ["", "### Excluded tests", "", "| Upstream test | Cases | Why excluded |"]
    lines.append("|---|---|---|")
    for key, reason in EXCLUDED.items():
        ids = excluded_ids.get(key, [])
        if key.endswith(".py"):
            names = sorted({_base(i).split("::", 1)[1] for i in ids})
            listed = ", ".join(f"`{n}`" for n in names)
            lines.append(f"| `{key}`, all of it: {listed} | {len(ids)} | {reason} |")
        else:
            lines.append(f"| `{key}` | {len(ids)} | {reason} |")
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
