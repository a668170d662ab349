"""README.md's settings tables are the managers' settings (``docs/settings_table.py``).

Each table is generated from the traits; a setting added, renamed or re-documented without
running ``python docs/settings_table.py`` fails here, as does a setting of ours that no table
lists.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from s3contents import S3ContentsManager
from s3contents.gcs import GCSContentsManager
from s3contents.hybrid import HybridContentsManager

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GENERATOR = ROOT / "docs" / "settings_table.py"
FIX = "run `python docs/settings_table.py` to rewrite them"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


if not GENERATOR.exists():  # an sdist ships tests/ and README.md, not docs/
    pytest.skip("docs/settings_table.py is not in this tree", allow_module_level=True)

generator = _load_generator()


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


@pytest.mark.parametrize("table", generator.TABLES, ids=lambda table: table.key)
def test_readme_table_is_generated_from_the_traits(table: Any) -> None:
    readme = readme_text()
    current = generator.current_table(table, readme)
    expected = generator.render_table(table, readme)
    if current != expected:
        diff = "\n".join(
            difflib.unified_diff(
                current.splitlines(), expected.splitlines(), "README.md", "traits", lineterm=""
            )
        )
        pytest.fail(
            f"README.md's {table.key!r} settings table differs from the traits: {FIX}.\n{diff}"
        )


def _settings_in(table_key: str) -> set[str]:
    """The setting names of a README table, read from the README itself."""
    table = next(t for t in generator.TABLES if t.key == table_key)
    names = set()
    for line in generator.current_table(table, readme_text()).splitlines():
        match = re.match(r"\| `(\w+)` \|", line)
        if match:
            names.add(match.group(1))
    return names


def _ours(cls: type) -> dict[str, type]:
    """``{setting: class declaring it}`` for the ``config=True`` traits of ``cls`` that a
    class of the s3contents package declares (wherever that class lives)."""
    return {
        name: trait.this_class
        for name, trait in cls.class_traits(config=True).items()  # type: ignore[attr-defined]
        if trait.this_class.__module__.split(".")[0] == "s3contents"
    }


def test_every_setting_of_ours_is_in_a_table() -> None:
    s3, hybrid, gcs = _settings_in("s3"), _settings_in("hybrid"), _settings_in("gcs")
    missing = [f"S3ContentsManager.{n}" for n in _ours(S3ContentsManager) if n not in s3]
    missing += [
        f"HybridContentsManager.{n}" for n in _ours(HybridContentsManager) if n not in hybrid
    ]
    for name, owner in _ours(GCSContentsManager).items():
        # What GCS shares with S3 is documented once, in the S3 table.
        shared = issubclass(S3ContentsManager, owner)
        if name not in (s3 if shared else gcs):
            missing.append(f"GCSContentsManager.{name}")
    assert not missing, f"settings missing from README.md's tables: {missing}: {FIX}"


def test_our_settings_are_found_whatever_their_module() -> None:
    # The shared manager's settings are inherited: they must be read through the class.
    settings = _ours(S3ContentsManager)
    assert {"bucket", "max_concurrency", "upload_part_size"} <= set(settings)
    assert "root_dir" not in settings  # jupyter_server's own
    assert "pre_save_hook" not in _ours(HybridContentsManager)
    assert "files_handler_class" in _ours(HybridContentsManager)  # redeclared by ours


def test_generated_cells_read_well() -> None:
    rendered = {t.key: generator.render_table(t, readme_text()) for t in generator.TABLES}
    s3 = rendered["s3"]
    assert "| `upload_part_size` | 8 MiB |" in s3
    assert "| `bucket` | `notebooks` | `JPY_S3_BUCKET` |" in s3
    assert "`JPY_S3_S3FS_CONFIG_KWARGS` (JSON)" in s3
    assert "| `manager_classes` | required |" in rendered["hybrid"]
    assert "`JPY_GCS_BUCKET`, `JPYNB_GCS_BUCKET`" in rendered["gcs"]
    for table in rendered.values():
        # No reStructuredText left, no Default:/Environment sentences repeated in "meaning".
        assert "``" not in table
        assert "Default:" not in table
        assert "Environment variable" not in table
        for line in table.splitlines():
            if line.startswith("| `"):
                assert line.count(" | ") == table.splitlines()[2].count(" | "), line


def test_check_mode_reports_a_stale_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = readme_text().replace("| `delimiter` |", "| `delimiter_old` |", 1)
    copy = tmp_path / "README.md"
    copy.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(generator, "README", copy)
    assert generator.main(["--check"]) == 1
    assert "run python docs/settings_table.py" in capsys.readouterr().out
    assert copy.read_text(encoding="utf-8") == stale
    assert generator.main([]) == 0
    assert copy.read_text(encoding="utf-8") == generator.update(readme_text())
    assert "| `delimiter_old` |" not in copy.read_text(encoding="utf-8")
