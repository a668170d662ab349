"""Manager settings that Jupyter validates while it loads the configuration."""

from __future__ import annotations

import pytest
from traitlets import TraitError
from traitlets.config import Config, Configurable

from s3contents import S3ContentsManager


def test_preferred_dir_from_config_does_not_touch_storage() -> None:
    # jupyter_server validates preferred_dir while the config loads, before the storage
    # settings are known: it used to crash start-up.
    config = Config({"S3ContentsManager": {"preferred_dir": "/work/notes/", "bucket": "b"}})
    cm = S3ContentsManager(config=config, endpoint_url="http://127.0.0.1:9")
    assert cm.preferred_dir == "work/notes"
    assert cm.storage.stats == {}


def test_preferred_dir_outside_the_root_is_refused() -> None:
    with pytest.raises(TraitError, match="preferred_dir"):
        S3ContentsManager(preferred_dir="../elsewhere", bucket="b")


def test_root_dir_mirrors_the_server() -> None:
    class Parent(Configurable):
        root_dir = "/srv/notebooks"

    assert S3ContentsManager(parent=Parent(), bucket="b").root_dir == "/srv/notebooks"
    assert S3ContentsManager(bucket="b").root_dir == "/"
