"""Clients racing each other on SeaweedFS: nothing overwritten, nothing lost, no orphan.

"Clients" are separate contents managers (as separate Jupyter Servers would be: no shared
state but the bucket) and concurrent REST requests to one server. The narrow windows (a save
landing between a rename's copy and its deletion) are opened on purpose by a proxy that
holds the rename's deletion back while the save goes through.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError

from tests.support.proxy import StorageProxy
from tests.support.servers import S3Server

CLIENTS = 20


def objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix/`` -> its content (keys relative to the prefix)."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) + 1 :]] = body
    return found


def text(content: str) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": content}


async def outcome(coro: Any) -> int:
    """The HTTP status a manager call would answer."""
    try:
        await coro
    except HTTPError as err:
        return err.status_code
    return 200


@pytest.fixture
def proxy(seaweedfs: S3Server) -> Iterator[StorageProxy]:
    with StorageProxy(seaweedfs.endpoint_url) as p:
        yield p


# --------------------------------------------------------------------------- new untitled


@pytest.mark.parametrize(
    ("kind", "clients"), [("notebook", CLIENTS), ("file", 5), ("directory", 5)]
)
async def test_managers_racing_for_new_untitled_get_distinct_names(
    make_cm: Any, s3: Any, kind: str, clients: int
) -> None:
    # SeaweedFS makes conditional writes racing on one key wait in steps of a second, so
    # 20 clients take ~10 s: the other kinds race with 5.
    managers = [make_cm() for _ in range(clients)]
    await managers[0].save({"type": "directory"}, "shared")
    # Each manager's client is made first (loading botocore's models takes a while): the
    # race is then between requests, as between servers that have been running.
    for cm in managers:
        assert await cm.dir_exists("shared")
    models = await asyncio.gather(*(cm.new_untitled("shared", type=kind) for cm in managers))
    paths = sorted(m["path"] for m in models)
    assert len(set(paths)) == clients, paths
    listing = await managers[0].get("shared")
    assert sorted(e["path"] for e in listing["content"]) == paths
    bucket, prefix = managers[0].bucket, managers[0].prefix
    stored = objects(s3, bucket, prefix)
    if kind == "directory":
        assert sorted(k.removesuffix("/.s3keep") for k in stored if k != "shared/.s3keep") == paths
    else:
        assert sorted(k for k in stored if k != "shared/.s3keep") == paths


async def test_twenty_rest_clients_new_untitled_get_twenty_distinct_files(
    jp_fetch: Any, s3: Any, s3_config: dict[str, str]
) -> None:
    async def post() -> str:
        r = await jp_fetch("api", "contents", method="POST", body=json.dumps({"type": "notebook"}))
        assert r.code == 201
        return str(json.loads(r.body)["path"])

    paths = await asyncio.gather(*(post() for _ in range(CLIENTS)))
    assert len(set(paths)) == CLIENTS, sorted(paths)
    assert sorted(objects(s3, s3_config["bucket"], s3_config["prefix"])) == sorted(paths)


# --------------------------------------------------------------------------- onto one name


async def test_two_renames_onto_one_name_one_wins_the_other_409(make_cm: Any, s3: Any) -> None:
    a, b = make_cm(), make_cm()
    await a.save(text("from a"), "a.txt")
    await a.save(text("from b"), "b.txt")
    codes = await asyncio.gather(
        outcome(a.rename("a.txt", "c.txt")), outcome(b.rename("b.txt", "c.txt"))
    )
    assert sorted(codes) == [200, 409], codes
    stored = objects(s3, a.bucket, a.prefix)
    winner, loser = ("a", "b") if codes[0] == 200 else ("b", "a")
    assert stored == {"c.txt": f"from {winner}".encode(), f"{loser}.txt": f"from {loser}".encode()}


async def test_two_copies_onto_one_name_one_wins_the_other_409(make_cm: Any, s3: Any) -> None:
    a, b = make_cm(), make_cm()
    await a.save(text("from a"), "a.txt")
    await a.save(text("from b"), "b.txt")
    codes = await asyncio.gather(
        outcome(a.copy("a.txt", "c.txt")), outcome(b.copy("b.txt", "c.txt"))
    )
    assert sorted(codes) == [200, 409], codes
    winner = "a" if codes[0] == 200 else "b"
    assert objects(s3, a.bucket, a.prefix) == {
        "a.txt": b"from a",
        "b.txt": b"from b",
        "c.txt": f"from {winner}".encode(),
    }


async def test_two_folder_renames_onto_one_name_one_wins_the_other_409(
    make_cm: Any, s3: Any
) -> None:
    a, b = make_cm(), make_cm()
    for folder in ("p", "q"):
        for i in range(30):
            await a.save(text(f"{folder}{i}"), f"{folder}/f{i}.txt")
    codes = await asyncio.gather(outcome(a.rename("p", "r")), outcome(b.rename("q", "r")))
    assert sorted(codes) == [200, 409], codes
    winner, loser = ("p", "q") if codes[0] == 200 else ("q", "p")
    stored = objects(s3, a.bucket, a.prefix)
    assert stored == {
        **{f"r/f{i}.txt": f"{winner}{i}".encode() for i in range(30)},
        **{f"{loser}/f{i}.txt": f"{loser}{i}".encode() for i in range(30)},
    }


async def test_rest_renames_racing_onto_one_name(jp_fetch: Any, make_cm: Any) -> None:
    cm = make_cm()
    for i in range(6):
        await cm.save(text(f"n{i}"), f"n{i}.txt")

    async def patch(i: int) -> int:
        try:
            r = await jp_fetch(
                "api", "contents", f"n{i}.txt", method="PATCH", body=json.dumps({"path": "t.txt"})
            )
        except HTTPClientError as err:
            return err.code
        return r.code

    codes = await asyncio.gather(*(patch(i) for i in range(6)))
    assert sorted(codes) == [200] + [409] * 5, codes
    winner = codes.index(200)
    assert (await cm.get("t.txt"))["content"] == f"n{winner}"
    for i in range(6):
        assert await cm.file_exists(f"n{i}.txt") is (i != winner)


# --------------------------------------------------------------------------- save vs rename


async def test_save_landing_inside_a_file_rename_makes_the_rename_409_and_loses_nothing(
    make_cm: Any, proxy: StorageProxy, s3: Any
) -> None:
    renamer = make_cm(endpoint_url=proxy.url)
    saver = make_cm()
    await saver.save(text("before"), "x.txt")
    await saver.create_checkpoint("x.txt")
    # Another client's save lands just as the rename's DELETE of x.txt arrives: after the
    # copy, before the deletion (written straight to the bucket by the proxy's hook).
    proxy.on(
        method="DELETE",
        key_contains="x.txt",
        action=lambda: s3.put_object(
            Bucket=saver.bucket, Key=f"{saver.prefix}/x.txt", Body=b"saved during the rename"
        ),
    )
    code = await outcome(renamer.rename("x.txt", "y.txt"))
    assert code == 409
    stored = objects(s3, saver.bucket, saver.prefix)
    # Nothing renamed, nothing left behind at y.txt, the save kept, the checkpoint in place.
    assert stored == {
        "x.txt": b"saved during the rename",
        ".ipynb_checkpoints/x-checkpoint.txt": b"before",
    }
    # Done again, the rename goes through with the saved content and its checkpoint.
    proxy.clear_rules()
    await renamer.rename("x.txt", "y.txt")
    assert objects(s3, saver.bucket, saver.prefix) == {
        "y.txt": b"saved during the rename",
        ".ipynb_checkpoints/y-checkpoint.txt": b"before",
    }


async def test_save_landing_inside_a_folder_rename_follows_the_folder(
    make_cm: Any, proxy: StorageProxy, s3: Any
) -> None:
    renamer = make_cm(endpoint_url=proxy.url)
    saver = make_cm()
    for i in range(20):
        await saver.save(text(f"v1 {i}"), f"d/f{i}.txt")
    # Another client's save lands just as the rename's batch delete arrives.
    proxy.on(
        method="POST",
        query_has="delete",
        action=lambda: s3.put_object(
            Bucket=saver.bucket, Key=f"{saver.prefix}/d/f7.txt", Body=b"v2 7"
        ),
    )
    await renamer.rename("d", "e")
    expected = {f"e/f{i}.txt": f"v1 {i}".encode() for i in range(20)}
    expected["e/f7.txt"] = b"v2 7"
    assert objects(s3, saver.bucket, saver.prefix) == expected


async def test_saves_racing_renames_never_lose_a_save(make_cm: Any, s3: Any) -> None:
    """Unsteered races: whatever the interleaving, each saved content is somewhere and no
    object exists that neither client asked for."""
    renamer, saver = make_cm(), make_cm()
    for round_ in range(8):
        await saver.save(text("old"), f"r{round_}/a.txt")
        results = await asyncio.gather(
            outcome(renamer.rename(f"r{round_}/a.txt", f"r{round_}/b.txt")),
            outcome(saver.save(text(f"new {round_}"), f"r{round_}/a.txt")),
        )
        assert results[1] == 200
        assert results[0] in (200, 409)
        stored = {
            k: v
            for k, v in objects(s3, saver.bucket, saver.prefix).items()
            if k.startswith(f"r{round_}/")
        }
        assert set(stored) <= {f"r{round_}/a.txt", f"r{round_}/b.txt"}
        assert f"new {round_}".encode() in stored.values(), stored
