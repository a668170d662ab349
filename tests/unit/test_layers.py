"""The layers of docs/architecture.md are the package's real imports.

The table between ``<!-- layers:start -->`` and ``<!-- layers:end -->`` lists every module
of the package, bottom layer first, with the package modules and the libraries it imports.
These tests read the imports from the source (an AST walk: module level, inside functions and
under ``TYPE_CHECKING`` alike) and check that the table says exactly that, that every
import goes to a module listed above the importer (no module imports one above it), and
that the lower layers import no web framework.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "s3contents"
DOC = ROOT / "docs" / "architecture.md"

#: Libraries whose imports the table names (the others are the standard library and small
#: helpers that say nothing about layers).
LIBRARIES = frozenset(
    {
        "aiobotocore",
        "aiohttp",
        "botocore",
        "gcsfs",
        "jupyter_events",
        "jupyter_server",
        "jupyter_server_fileid",
        "nbformat",
        "prometheus_client",
        "tornado",
        "traitlets",
    }
)
#: Modules that must stay free of Jupyter and of the web framework.
NO_WEB = (
    "paths",
    "models",
    "storage.",
    "claims",
    "folders",
    "renames",
    "tree",
    "uploads",
    "s3.storage",
    "s3.errors",
    "gcs.client",
    "gcs.storage",
)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(rel.parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(package modules, libraries) that ``path`` imports anywhere in its source."""
    package: set[str] = set()
    libraries: set[str] = set()
    here = name.split(".")
    base = here[:-1]  # the package the module lies in (for __init__ too: its own package)

    def add(dotted: list[str]) -> None:
        for size in range(len(dotted), 0, -1):
            cand = ".".join(dotted[:size])
            if cand in modules:
                package.add(cand)
                return
            if cand + ".__init__" in modules:
                package.add(cand + ".__init__")
                return
        package.add("__init__")

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                target = parent + (node.module.split(".") if node.module else [])
                for alias in node.names:
                    add([*target, alias.name])
            elif node.module:
                top = node.module.split(".")[0]
                if top == "s3contents":
                    for alias in node.names:
                        add([*node.module.split(".")[1:], alias.name])
                elif top in LIBRARIES:
                    libraries.add(top)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "s3contents":
                    add(alias.name.split(".")[1:])
                elif top in LIBRARIES:
                    libraries.add(top)
    package.discard(name)
    return package, libraries


def _table() -> list[tuple[str, set[str], set[str]]]:
    """(module, package imports, libraries) of each row, in the table's order."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- layers:start -->(.*?)<!-- layers:end -->", text, re.S)
    assert match, f"{DOC} has no layers table between <!-- layers:start/end --> markers"
    rows = []
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        module = cells[0].strip("`").removesuffix(".py").replace("/", ".")
        package = set(re.findall(r"`([\w.]+)`", cells[2]))
        libraries = set(re.findall(r"`([\w.]+)`", cells[3]))
        rows.append((module, package, libraries))
    return rows


def test_the_table_lists_every_module_once() -> None:
    listed = [module for module, _, _ in _table()]
    assert sorted(listed) == sorted(set(listed)), "a module is listed twice"
    assert set(listed) == set(_modules()), (
        f"missing from the table: {sorted(set(_modules()) - set(listed))}; "
        f"in the table but not in the package: {sorted(set(listed) - set(_modules()))}"
    )


@pytest.mark.parametrize("row", _table(), ids=lambda row: row[0])
def test_the_table_says_what_each_module_imports(row: tuple[str, set[str], set[str]]) -> None:
    module, package, libraries = row
    modules = _modules()
    actual_package, actual_libraries = _imports(module, modules[module], modules)
    assert package == actual_package, f"{module} imports {sorted(actual_package)}"
    assert libraries == actual_libraries, (
        f"{module} imports the libraries {sorted(actual_libraries)}"
    )


def test_no_module_imports_one_above_it() -> None:
    modules = _modules()
    seen: set[str] = set()
    for module, _, _ in _table():
        above = _imports(module, modules[module], modules)[0] - seen
        assert not above, f"{module} imports {sorted(above)}, listed above it (or not at all)"
        seen.add(module)


def test_lower_layers_import_no_web_framework() -> None:
    modules = _modules()
    for module, path in modules.items():
        if module.startswith(NO_WEB):
            libraries = _imports(module, path, modules)[1]
            assert not libraries & {"tornado", "jupyter_server"}, module
