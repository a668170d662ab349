"""The settings tables of README.md, generated from the managers' traits.

    python docs/settings_table.py           # rewrite the tables in README.md
    python docs/settings_table.py --check   # only say whether README.md is up to date

Each table sits between two markers in README.md (``<!-- settings:s3:start -->`` and
``<!-- settings:s3:end -->``, likewise ``hybrid`` and ``gcs``) and lists the settings
(traits with ``config=True``) that s3contents' own classes declare, read from the public
classes whatever module they live in:

* ``s3``: :class:`s3contents.S3ContentsManager`, its own settings and those of the shared
  manager it inherits;
* ``hybrid``: :class:`s3contents.hybrid.HybridContentsManager`, without jupyter_server's;
* ``gcs``: :class:`s3contents.gcs.GCSContentsManager`, without the shared manager's (the
  README says they apply as for S3).

Each column comes from the trait:

* default: ``.tag(doc_default=...)`` when the trait has one, else the table's
  :attr:`Table.defaults` (a default value such as ``None`` or ``""`` that stands for
  something else: the AWS credential chain...), "required" when the help says
  "Required.", otherwise the default value (``*_size`` settings in KiB/MiB);
* environment: ``.tag(env=...)`` (the S3 table shows the first name: the README says the
  ``JPYNB_S3_*`` twins work too), "(JSON)" for a JSON-valued variable;
* meaning: ``.tag(doc=...)`` when the trait has one, else the table's
  :attr:`Table.meanings`, otherwise its help up to the
  sentences naming the default and the environment variable (its first paragraph when it
  has several), with a link to the README section that says more (:data:`SEE_ALSO`).

``tests/unit/test_readme_settings.py`` fails when README.md differs from what this makes,
or when a setting is missing from the tables.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Settings whose row links to the README section that explains them further.
SEE_ALSO = {
    "init_s3_hook": "AWS key refresh",
    "boto3_session": "AWS key refresh",
    "post_save_hook": "Save hooks",
    "upload_part_size": "Chunked uploads",
    "upload_timeout": "Chunked uploads",
}


def _s3() -> type:
    from s3contents import S3ContentsManager

    return S3ContentsManager


def _gcs() -> type:
    from s3contents.gcs import GCSContentsManager

    return GCSContentsManager


def _hybrid() -> type:
    from s3contents.hybrid import HybridContentsManager

    return HybridContentsManager


@dataclass(frozen=True)
class Table:
    """One settings table of the README."""

    key: str  #: its markers' name: ``<!-- settings:{key}:start -->``
    manager: Callable[[], type]  #: the class whose settings it lists
    #: Row order; settings not named here follow, alphabetically.
    order: tuple[str, ...]
    #: Every name of an environment variable, or only the first.
    all_env_names: bool = False
    #: Traits listed although they are not ``config=True`` (set by a hook or a keyword).
    extra: tuple[str, ...] = ()
    #: Leave out the settings that this class inherits too (they are in its table).
    shared_with: Callable[[], type] | None = None
    #: Default cells where the default value does not say what happens (kept here rather
    #: than as ``.tag(doc_default=...)`` while the managers' modules move).
    defaults: tuple[tuple[str, str], ...] = ()
    #: Meaning cells where the help does not read well in the README (same note).
    meanings: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ("setting", "default", "environment", "meaning")

    @property
    def start(self) -> str:
        return f"<!-- settings:{self.key}:start -->"

    @property
    def end(self) -> str:
        return f"<!-- settings:{self.key}:end -->"


TABLES = (
    Table(
        "s3",
        _s3,
        order=(
            "bucket",
            "prefix",
            "delimiter",
            "endpoint_url",
            "region_name",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "anon",
            "signature_version",
            "sse",
            "kms_key_id",
            "skip_tls_verify",
            "s3fs_additional_kwargs",
            "s3fs_config_kwargs",
            "init_s3_hook",
            "boto3_session",
            "post_save_hook",
            "max_concurrency",
            "upload_part_size",
            "upload_timeout",
            "request_timeout",
            "rename_lease",
            "hash_algorithm",
            "delete_to_trash",
            "always_delete_dir",
            "files_handler_class",
        ),
        extra=("boto3_session",),
        defaults=(
            ("endpoint_url", "AWS"),
            ("access_key_id", "AWS chain"),
            ("secret_access_key", "AWS chain"),
            ("signature_version", "botocore's"),
            ("sse", "the bucket's"),
        ),
        meanings=(
            # Its help ends "see the README".
            (
                "init_s3_hook",
                "Callable (or import string) called as ``hook(contents_manager)`` when the "
                "manager starts, before it connects; it may set ``boto3_session`` or other "
                "settings.",
            ),
        ),
    ),
    Table(
        "hybrid",
        _hybrid,
        order=("manager_classes", "manager_kwargs", "cross_mount_chunk_size"),
        columns=("setting", "default", "meaning"),
    ),
    Table(
        "gcs",
        _gcs,
        order=(
            "bucket",
            "prefix",
            "project",
            "token",
            "separator",
            "endpoint_url",
            "region_name",
        ),
        all_env_names=True,
        shared_with=_s3,
        defaults=(
            ("project", "the credentials'"),
            ("token", "Google's default credentials"),
            ("endpoint_url", "`STORAGE_EMULATOR_HOST`, else Google"),
        ),
    ),
)


def is_ours(trait: Any) -> bool:
    """Whether ``trait`` is declared (or redeclared) by a class of the s3contents package."""
    owner = trait.this_class
    return owner is not None and owner.__module__.split(".")[0] == "s3contents"


def declared_settings(cls: type) -> dict[str, Any]:
    """The ``config=True`` traits of ``cls`` that s3contents' classes declare."""
    traits = cls.class_traits(config=True)  # type: ignore[attr-defined]
    return {name: trait for name, trait in traits.items() if is_ours(trait)}


def table_traits(table: Table) -> dict[str, Any]:
    """The traits ``table`` lists, in its order."""
    cls = table.manager()
    traits = declared_settings(cls)
    every = cls.class_traits()  # type: ignore[attr-defined]
    for name in table.extra:
        traits[name] = every[name]
    if table.shared_with is not None:
        other = table.shared_with()
        traits = {
            name: trait for name, trait in traits.items() if not issubclass(other, trait.this_class)
        }
    for name, _ in table.defaults + table.meanings:
        if name not in traits:
            raise ValueError(f"table {table.key!r} overrides {name!r}, which it does not list")
    rank = {name: i for i, name in enumerate(table.order)}
    names = sorted(traits, key=lambda name: (rank.get(name, len(rank)), name))
    return {name: traits[name] for name in names}


# --------------------------------------------------------------------------- cells


def _code(text: str) -> str:
    return f"`{text}`"


def _size(value: int) -> str | None:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return None


def default_cell(table: Table, name: str, trait: Any) -> str:
    if "doc_default" in trait.metadata:
        return str(trait.metadata["doc_default"])
    if name in dict(table.defaults):
        return dict(table.defaults)[name]
    if re.search(r"\bRequired\.", trait.help or ""):
        return "required"
    value = trait.default()
    if value is None:
        return "none"
    if isinstance(value, bool):
        return _code(str(value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and name.endswith("_size"):
        size = _size(value)
        if size:
            return size
    if value == "":
        return _code('""')
    if isinstance(value, type):
        value = f"{value.__module__}.{value.__qualname__}"
    return _code(str(value))


def env_cell(trait: Any, all_names: bool) -> str:
    names = trait.metadata.get("env")
    if not names:
        return "—"
    if isinstance(names, str):
        names = (names,)
    if not all_names:
        names = names[:1]
    cell = ", ".join(_code(n) for n in names)
    if trait.metadata.get("env_json") or type(trait).__name__ == "Dict":
        cell += " (JSON)"
    return cell


#: Where a help text stops describing the setting: its default and its variables.
_TAIL = re.compile(r"\s*(?:Default:|Default is|Environment variable|Required\.).*", re.S)


def _markdown(text: str) -> str:
    """A help text (reStructuredText-ish) as one line of a Markdown table cell."""
    text = " ".join(text.split())
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    # Quoted values ('users/alice', 's3v4', sse='aws:kms') as code, apostrophes (the SDK's)
    # left alone.
    text = re.sub(r"(?<![\w`])(\w+='[^']*')(?![\w`])", r"`\1`", text)
    text = re.sub(r"(?<![\w`])'([^'\s][^']*?)'(?![\w`])", r"`\1`", text)
    text = text.replace(" -> ", " → ")
    return text.replace("|", "\\|")


def meaning_cell(table: Table, name: str, trait: Any, readme: str) -> str:
    doc = trait.metadata.get("doc", dict(table.meanings).get(name))
    if doc is None:
        help_text = (trait.help or "").strip()
        first = re.split(r"\n\s*\n", help_text, maxsplit=1)[0]
        doc = _TAIL.sub("", first).strip()
    if not doc:
        raise ValueError(
            f"{trait.this_class.__name__}.{name} has no help to document it: give it one "
            "(or .tag(doc=...))"
        )
    cell = _markdown(doc)
    section = SEE_ALSO.get(name)
    if section:
        if not re.search(rf"^#+ {re.escape(section)}$", readme, re.M):
            raise ValueError(f"SEE_ALSO[{name!r}]: README.md has no section {section!r}")
        cell += f" See [{section}](#{_anchor(section)})."
    return cell


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def render_table(table: Table, readme: str) -> str:
    """The Markdown of ``table``, markers included."""
    lines = [table.start, ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    for name, trait in table_traits(table).items():
        cells = {
            "setting": _code(name),
            "default": default_cell(table, name, trait),
            "environment": env_cell(trait, table.all_env_names),
            "meaning": meaning_cell(table, name, trait, readme),
        }
        if "environment" not in table.columns and trait.metadata.get("env"):
            raise ValueError(
                f"{name} has environment variables: give table {table.key!r} the column"
            )
        lines.append("| " + " | ".join(cells[c] for c in table.columns) + " |")
    lines += ["", table.end]
    return "\n".join(lines)


def current_table(table: Table, readme: str) -> str:
    """What README.md holds between ``table``'s markers, markers included."""
    start, end = readme.find(table.start), readme.find(table.end)
    if start == -1 or end == -1 or end < start:
        raise ValueError(f"README.md has no {table.start} ... {table.end} markers")
    return readme[start : end + len(table.end)]


def update(readme: str) -> str:
    """``readme`` with every table rendered anew."""
    for table in TABLES:
        readme = readme.replace(current_table(table, readme), render_table(table, readme), 1)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when README.md differs"
    )
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = update(text)
    if new == text:
        print("README.md: settings tables up to date")
        return 0
    if args.check:
        diff = difflib.unified_diff(
            text.splitlines(), new.splitlines(), "README.md", "generated", lineterm=""
        )
        print("\n".join(diff))
        print("README.md: settings tables differ: run python docs/settings_table.py")
        return 1
    README.write_text(new, encoding="utf-8")
    print("README.md: settings tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
