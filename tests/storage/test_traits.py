"""The store's traits (:mod:`s3contents.traits`), probed by the adapter, on every server.

Each answer is compared with the server's behaviour as seen without the adapter (the
``copy_create_only`` gap of :mod:`tests.storage.gaps`; the backend's known directories):
a probe that answered wrong would make renames overwrite (a false ``create_only_copy``) or
leave ghost folders (a false ``keeps_emptied_folders``).
"""

from __future__ import annotations

from typing import Any

import pytest

from s3contents.errors import Forbidden
from s3contents.paths import KeyMapper
from s3contents.storage.base import Storage
from s3contents.traits import SAFE, StoreTraits
from tests.storage.backends import Backend
from tests.storage.gaps import probe


async def _no_request(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a request")


def _keys(prefix: str) -> KeyMapper:
    return KeyMapper(prefix=prefix.rstrip("/"), delimiter="/", marker=".s3keep")


async def test_probe_agrees_with_the_server_and_leaves_nothing(
    storage: Storage, backend: Backend, prefix: str
) -> None:
    traits = StoreTraits(storage, _keys(prefix), "o1")
    found = await traits.get()
    honours = probe(backend.server, backend.bucket, "copy_create_only") is None
    assert found.create_only_copy is honours
    assert found.keeps_emptied_folders is backend.keeps_emptied_folders
    # Asked once: the second answer is the same, with no request.
    with pytest.MonkeyPatch.context() as mp:
        for name in ("put", "copy", "list", "delete_many"):
            mp.setattr(storage, name, _no_request)
        assert await traits.get() is found
    # Nothing of the probe is left, not even an emptied folder entry (but the root's own
    # directory on SeaweedFS: a manager's root is a folder anyway).
    listing = await storage.list(prefix)
    assert [o.key for o in listing.objects if o.key != prefix] == []
    assert listing.prefixes == []
    assert [o async for o in storage.list_all(prefix)] == []


async def test_a_store_that_refuses_the_probe_gets_the_safe_answers(
    storage: Storage, prefix: str, monkeypatch: Any
) -> None:
    async def refused(*args: Any, **kwargs: Any) -> None:
        raise Forbidden("read-only credentials")

    monkeypatch.setattr(storage, "put", refused)
    assert await StoreTraits(storage, _keys(prefix), "o2").get() == SAFE


async def test_known_is_none_until_a_probe_answered(storage: Storage, prefix: str) -> None:
    traits = StoreTraits(storage, _keys(prefix), "o3")
    assert traits.known() is None  # asking what is known sends nothing
    found = await traits.get()
    assert traits.known() == found
