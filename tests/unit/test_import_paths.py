"""The import paths configurations name keep working after the provider layout moved."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from traitlets.utils.importstring import import_item

import s3contents
from s3contents.gcs import GCSContentsManager
from s3contents.hybrid import HybridContentsManager


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s3contents.S3ContentsManager", lambda: s3contents.S3ContentsManager),
        ("s3contents.s3manager.S3ContentsManager", lambda: s3contents.S3ContentsManager),
        ("s3contents.s3.S3ContentsManager", lambda: s3contents.S3ContentsManager),
        ("s3contents.gcs.GCSContentsManager", lambda: GCSContentsManager),
        ("s3contents.gcs.gcsmanager.GCSContentsManager", lambda: GCSContentsManager),
        ("s3contents.hybrid.HybridContentsManager", lambda: HybridContentsManager),
    ],
)
def test_configured_names_import_the_same_classes(name: str, expected: Callable[[], type]) -> None:
    # The way Jupyter reads contents_manager_class = "..." from a configuration file.
    assert import_item(name) is expected()
