"""Fixtures of the hybrid manager's tests: a live Jupyter Server on ``HybridContentsManager``.

* ``local_root`` (function): the local folder served by the root mount (``tmp_path/local``).
* ``mounts`` (function): the layout, mount name -> (class, keyword arguments): the root is
  a ``LargeFileManager`` on ``local_root``; ``s3`` an ``S3ContentsManager`` on the test's
  prefix (``s3_config``); ``me`` another prefix of the same bucket (``<prefix>-me``, a sibling
  key prefix); ``team`` the root of a bucket of the test's own (``bucket``).
* ``jp_server_config`` / ``jp_serverapp``: the server on that layout; its manager (and so
  every mount's) is closed after the test.
* ``s3``: a boto3 client of SeaweedFS; ``where``: where a mount keeps a path, to check the
  store itself (:class:`Stores`).
* ``make_hybrid`` (function): ``make_hybrid(layout, **settings)`` makes a hybrid manager
  without a server; each one made is closed after the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.largefilemanager import LargeFileManager
from traitlets.config import Config

from s3contents import S3ContentsManager
from s3contents.hybrid import HybridContentsManager
from tests.hybrid.hybrid_support import Layout, Stores, hybrid_config
from tests.support import s3_fixtures
from tests.support.servers import S3Server


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    root = tmp_path / "local"
    root.mkdir()
    return root


@pytest.fixture
def mounts(local_root: Path, s3_config: dict[str, str], bucket: str, seaweedfs: S3Server) -> Layout:
    team = {**s3_config, "bucket": bucket, "prefix": ""}
    me = {**s3_config, "prefix": s3_config["prefix"] + "-me"}
    return {
        "": (LargeFileManager, {"root_dir": str(local_root)}),
        "s3": (S3ContentsManager, dict(s3_config)),
        "me": (S3ContentsManager, me),
        "team": (S3ContentsManager, team),
    }


#: The live server's fixture, on the layout below (it asks for ``jp_server_config``).
jp_serverapp = s3_fixtures.jp_serverapp


@pytest.fixture
def jp_server_config(mounts: Layout) -> Config:
    return hybrid_config(mounts)


@pytest.fixture
def s3(seaweedfs: S3Server) -> Iterator[Any]:
    """A boto3 client of the SeaweedFS server."""
    client = seaweedfs.client()
    yield client
    client.close()


@pytest.fixture
def where(jp_serverapp: Any, s3: Any, local_root: Path) -> Stores:
    return Stores(jp_serverapp.contents_manager, s3, local_root)


@pytest.fixture
def make_hybrid(
    jp_asyncio_loop: asyncio.AbstractEventLoop, jp_environ: None
) -> Iterator[Callable[..., HybridContentsManager]]:
    made: list[HybridContentsManager] = []

    def make(layout: Layout, **settings: Any) -> HybridContentsManager:
        cm = HybridContentsManager(
            manager_classes={m: cls for m, (cls, _) in layout.items()},
            manager_kwargs={m: dict(kw) for m, (_, kw) in layout.items()},
            **settings,
        )
        made.append(cm)
        return cm

    yield make
    for cm in made:
        jp_asyncio_loop.run_until_complete(cm.close())
