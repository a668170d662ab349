"""Jupyter itself SIGKILLed in the middle of an operation, then restarted (issue 12).

One Jupyter server (``python -m jupyterlab``, a real process) on SeaweedFS reaches the store
through a proxy that SIGKILLs it at the storage request that carries the operation: a 20 MB
save (its PUT), a checkpoint restore (its COPY), a folder delete (its LIST, its batch
delete) and a folder rename (its first batch delete, after every copy). Then the server is
started again on the same bucket and prefix, and everything is checked straight in the
bucket (boto3, not through Jupyter). Figures: printed after the module (``-s``).

Where the kill happens, and whether the killed request still reaches the store. ``arrived``
(:meth:`tests.support.proxy.StorageProxy.on`): the proxy runs the kill once the request's
head has arrived, *then* forwards the request. A request without a body (COPY, LIST) or with a small
one (a batch delete's XML) is already whole in the proxy's socket when Jupyter dies: it
reaches the store and is carried out, although nobody is left to read the answer. A 20 MB
PUT is not: Jupyter dies half-way through sending it, the proxy forwards what it got, and
the store, seeing a body cut short, must discard it. ``dropped``: the same kill, the request
then not forwarded (Jupyter died just before sending it). ``answered``: the kill once the
store has answered, before Jupyter reads the answer (the write is done, Jupyter never
learns it). Each test reads from the proxy's record whether the store answered the killed
request, accepts the old state or the new one and nothing else, and reports which it found.

What must hold, every time: no object partly written, no file lost, no acknowledged save
undone, no claim of a rename left behind; the client gets no 2xx for the killed operation;
the same operation sent again to the restarted server completes.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.multiwriter.multiwriter_support import Writers, api_path, claims_in
from tests.support.servers import S3Server

MIB = 1024 * 1024
SAVE_SIZE = 20 * MIB
FOLDER_FILES = 300
#: More than one batch delete (1,000 keys each): a kill between the two leaves a part.
BIG_FOLDER_FILES = 1200
#: The object that keeps a folder made through Jupyter (``folder_marker``).
MARKER = ".s3keep"
#: What the killed client sees: the connection closed with no answer.
NO_ANSWER = (OSError, http.client.HTTPException)

#: Figures found by this module: (what, value), printed after the module (pytest -s).
FIGURES: list[tuple[str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print("\nJupyter SIGKILLed mid-operation (tests/multiwriter/test_kills.py):")
    for what, value in FIGURES:
        print(f"  {what}: {value}")


@pytest.fixture(scope="module")
def w(seaweedfs: S3Server) -> Iterator[Writers]:
    """One Jupyter server on a bucket of this module's, behind a proxy of its own."""
    bucket = seaweedfs.make_bucket()
    made = Writers(seaweedfs, bucket, f"kills/{secrets.token_hex(6)}")
    try:
        made.start(1)
        yield made
    finally:
        made.stop()
        seaweedfs.remove_bucket(bucket)


@pytest.fixture(autouse=True)
def _alive(w: Writers) -> Iterator[None]:
    """Each test starts with the server running and no rule left over."""
    app = w.apps[0]
    if app.process is None or app.process.poll() is not None:
        w.restart(0)
    w.proxies[0].clear_rules()
    w.proxies[0].reset()
    yield
    w.proxies[0].clear_rules()


# --------------------------------------------------------------------------- helpers


#: Where a kill happens, for test ids: as the request reaches the proxy, which forwards it
#: then; the same, the request then dropped; once the store has answered it.
WHEN = ("arrived", "dropped", "answered")


def kill_at(w: Writers, when: str, **rule: Any) -> threading.Event:
    """SIGKILL the server at the first request matching ``rule`` (the fields of
    :class:`tests.support.proxy.Rule`), ``when`` it happens (:data:`WHEN`); the event is set
    once it is dead."""
    return w.kill_on(0, when=when, **rule)


def settle(w: Writers, timeout: float = 30) -> None:
    """Wait until the proxy has passed on every request it had: the killed one reached the
    store after the kill, and the store may still be carrying it out (a batch delete of
    hundreds of keys). The dead server's connections are closed, so none is left once the
    store answered the last request (or the proxy gave up on a body cut short)."""
    proxy = w.proxies[0]
    w.wait_until(lambda: proxy.connections == 0, "the proxy to pass on the killed request", timeout)


def sha(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest()[:12] if data is not None else "absent"


def base64_file(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}


def notebook(source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": "code", "source": source, "metadata": {}, "outputs": []}
    cell["execution_count"] = None
    content = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return {"type": "notebook", "content": content}


def answered(w: Writers, method: str, key: str = "", query: str | None = None) -> str:
    """What the store answered to the killed request, the first matching one since the
    proxy's record was cleared: ``yes (status)``, or ``no`` (it never answered)."""
    statuses = [
        s.status
        for s in w.proxies[0].requests()
        if s.method == method and s.key == key and (query is None or query in s.query)
    ]
    assert len(statuses) <= 1, statuses  # nothing of the kind after the killed request
    return f"yes ({statuses[0]})" if statuses else "no"


def keys_under(w: Writers, folder: str) -> list[str]:
    """Every key under ``folder``, folder entries (``x/``) included."""
    client = w.server.client()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=w.bucket, Prefix=w.key(folder) + "/"
        )
        return [o["Key"] for page in pages for o in page.get("Contents", ())]
    finally:
        client.close()


def restart(w: Writers) -> tuple[Any, float]:
    began = time.monotonic()
    app = w.restart(0)
    return app, time.monotonic() - began


# --------------------------------------------------------------------------- 20 MB save

#: when -> trials (a body cut short is the case where timing could matter: several).
SAVE_TRIALS = {"arrived": 3, "answered": 1}


@pytest.mark.parametrize("when", list(SAVE_TRIALS))
def test_a_20_mb_save_killed_leaves_old_or_new_bytes_and_a_retry_saves(
    w: Writers, when: str
) -> None:
    """A 20 MB file saved over an existing 20 MB file through REST (one PUT to the store),
    with a checkpoint; Jupyter SIGKILLed as that PUT reaches the proxy (``arrived``: the
    body is cut short) or just after the store answered it (``answered``); restarted.
    Proves, trial after trial: the client gets no 2xx; the object is exactly the old bytes
    or exactly the new ones (sha256), never a part or a mix; the checkpoint is untouched;
    the same save sent to the restarted server answers 200 and the object is then the new
    bytes."""
    folder = f"save-{when}"
    path = f"{folder}/big.bin"
    checkpoint = f"{folder}/.ipynb_checkpoints/big-checkpoint.bin"
    key = w.key(path)
    old = os.urandom(SAVE_SIZE)
    app = w.apps[0]
    assert app.status_of(api_path(folder), "PUT", {"type": "directory"}) == 201
    assert app.status_of(api_path(path), "PUT", base64_file(old)) == 201
    code, body = app.call(api_path(path) + "/checkpoints", "POST")
    assert code == 201, body
    checkpointed = sha(old)
    outcomes: list[str] = []
    said: list[str] = []
    took: list[float] = []
    for _ in range(SAVE_TRIALS[when]):
        new = os.urandom(SAVE_SIZE)
        w.proxies[0].reset()
        dead = kill_at(w, when, method="PUT", key_contains=key)
        with pytest.raises(NO_ANSWER):  # no answer at all, so no 2xx
            app.status_of(api_path(path), "PUT", base64_file(new))
        assert dead.wait(30)
        settle(w)
        said.append(answered(w, "PUT", key))

        after = w.snapshot(folder)
        assert set(after) == {path, checkpoint, f"{folder}/{MARKER}"}
        outcome = {sha(old): "old", sha(new): "new"}.get(sha(after[path]))
        assert outcome is not None, (len(after[path]), sha(after[path]))
        outcomes.append(outcome)
        assert sha(after[checkpoint]) == checkpointed

        app, seconds = restart(w)
        took.append(seconds)
        model = app.api(api_path(path) + "?content=0")
        assert model["size"] == SAVE_SIZE
        code, body = app.call(api_path(path), "PUT", base64_file(new))
        assert code == 200, body
        after = w.snapshot(folder)
        assert sha(after[path]) == sha(new)
        assert sha(after[checkpoint]) == checkpointed
        old = new
    # One PutObject per save: no multipart upload was begun, none is left behind.
    uploads = w.server.admin.list_multipart_uploads(Bucket=w.bucket, Prefix=w.key(folder))
    assert uploads.get("Uploads", []) == []
    FIGURES.append(
        (
            f"20 MB save, killed when its PUT {when}",
            f"{len(outcomes)} trial(s); the store answered the killed PUT: {', '.join(said)}; "
            f"object after the kill: {', '.join(outcomes)}; lost or partial: 0; retry 200 "
            f"(new bytes) every time; restart {max(took):.1f} s at most",
        )
    )


# --------------------------------------------------------------------------- checkpoint restore


@pytest.mark.parametrize("when", WHEN)
def test_a_checkpoint_restore_killed_at_its_copy_leaves_old_or_restored(
    w: Writers, when: str
) -> None:
    """A notebook with a checkpoint, saved since (acknowledged); its restore (POST
    /api/contents/<nb>/checkpoints/<id>: one COPY in the store) killed as the COPY reaches
    the proxy (``arrived``: forwarded; ``dropped``: not) or once the store answered it
    (``answered``). Proves: the client gets no 2xx; the notebook is exactly its last save
    or exactly the checkpoint's content, nothing else; the checkpoint is untouched; the
    restore sent again to the restarted server answers 204 and the notebook is then the
    checkpoint's content."""
    folder = f"restore-{when}"
    path = f"{folder}/nb.ipynb"
    checkpoint = f"{folder}/.ipynb_checkpoints/nb-checkpoint.ipynb"
    marker = f"{folder}/{MARKER}"
    app = w.apps[0]
    assert app.status_of(api_path(folder), "PUT", {"type": "directory"}) == 201
    assert app.status_of(api_path(path), "PUT", notebook("print('checkpointed')")) == 201
    code, made = app.call(api_path(path) + "/checkpoints", "POST")
    assert code == 201, made
    assert app.status_of(api_path(path), "PUT", notebook("print('saved since')")) == 200
    before = w.snapshot(folder)
    saved, kept = before[path], before[checkpoint]
    assert b"saved since" in saved and b"checkpointed" in kept

    key = w.key(path)
    restore = api_path(path) + f"/checkpoints/{made['id']}"
    w.proxies[0].reset()
    dead = kill_at(w, when, method="PUT", key_contains=key)
    with pytest.raises(NO_ANSWER):
        app.status_of(restore, "POST")
    assert dead.wait(30)
    settle(w)
    store_said = answered(w, "PUT", key)

    after = w.snapshot(folder)
    assert set(after) == {path, checkpoint, marker}
    outcome = {saved: "its last save", kept: "the checkpoint's content"}.get(after[path])
    assert outcome is not None, after[path][:300]
    assert after[checkpoint] == kept

    app, took = restart(w)
    assert app.status_of(restore, "POST") == 204
    assert w.snapshot(folder) == {path: kept, checkpoint: kept, marker: b""}
    model = app.api(api_path(path))
    assert model["content"]["cells"][0]["source"] == "print('checkpointed')"
    FIGURES.append(
        (
            f"checkpoint restore, killed when its COPY {when}",
            f"1 trial; the store answered the killed COPY: {store_said}; notebook after the "
            f"kill: {outcome}; retry 204; restart {took:.1f} s",
        )
    )


# --------------------------------------------------------------------------- folder delete

#: variant -> (what is killed when, files in the folder, when, the rule of the kill)
DELETES: dict[str, tuple[str, int, str, dict[str, Any]]] = {
    "list": (
        "its LIST arrived",
        FOLDER_FILES,
        "arrived",
        {"method": "GET", "query_has": "list-type"},
    ),
    "batch": (
        "its batch delete arrived",
        FOLDER_FILES,
        "arrived",
        {"method": "POST", "query_has": "delete"},
    ),
    "batch-dropped": (
        "its batch delete dropped",
        FOLDER_FILES,
        "dropped",
        {"method": "POST", "query_has": "delete"},
    ),
    # 1,000 keys a batch: the first done, the second never sent.
    "two-batches": (
        "the first of two batch deletes answered",
        BIG_FOLDER_FILES,
        "answered",
        {"method": "POST", "query_has": "delete"},
    ),
}


def _listed(app: Any, folder: str) -> tuple[int, set[str] | None, bool]:
    """(status of GET folder, names in it, whether its parent lists it) through REST."""
    code, model = app.call(api_path(folder))
    names = {c["name"] for c in model["content"]} if code == 200 else None
    parent, name = folder.rsplit("/", 1)
    in_parent = any(c["name"] == name for c in app.api(api_path(parent))["content"])
    return code, names, in_parent


@pytest.mark.parametrize("variant", list(DELETES))
def test_a_folder_delete_killed_leaves_whole_files_and_a_retry_deletes_the_rest(
    w: Writers, variant: str
) -> None:
    """DELETE /api/contents/<folder> of a folder of 300 files killed as its LIST or its
    batch delete reaches the proxy (forwarded, or dropped), or of 1,200 files (two batches)
    killed once the first batch was answered. Proves: the client gets no 2xx; every file is
    either there with its content or gone, never a partial object, and nothing outside the
    folder is touched (a sibling file, a sibling folder whose name starts with the
    folder's); the restarted server lists the folder, with exactly the files left, in it
    and in its parent, or neither; a retry answers 204 when something was left (404 when
    the killed request had deleted everything: nothing is left to delete) and leaves no key
    under the folder."""
    what, count, when, rule = DELETES[variant]
    top = f"del-{variant}"
    folder = f"{top}/D"
    files = w.seed(folder, count, size=200)
    others = w.seed(f"{top}/D2", 3) | w.seed(top, 1)  # D2/f000N.txt and f0000.txt
    app = w.apps[0]
    assert app.status_of(api_path(folder)) == 200
    w.proxies[0].reset()
    dead = kill_at(w, when, **rule)
    with pytest.raises(NO_ANSWER):
        app.status_of(api_path(folder), "DELETE")
    assert dead.wait(30)
    settle(w)
    store_said = answered(w, rule["method"], "", rule["query_has"])

    after = w.snapshot(top)
    partial = sorted(p for p, c in after.items() if p in files and c != files[p])
    stray = sorted(p for p in after if p not in files and p not in others)
    assert partial == [] and stray == [], (partial[:5], stray[:5])
    assert {p: after.get(p) for p in others} == others
    left = {p.rsplit("/", 1)[1] for p in after if p in files}

    app, took = restart(w)
    code, names, in_parent = _listed(app, folder)
    if left:
        assert (code, names, in_parent) == (200, left, True)
    else:
        # Listed as an empty folder (had SeaweedFS kept its entry) or not at all, alike.
        assert (code, names, in_parent) in ((404, None, False), (200, set(), True))
    retry = app.status_of(api_path(folder), "DELETE")
    assert retry == (204 if code == 200 else 404)
    assert keys_under(w, folder) == []
    assert _listed(app, folder) == (404, None, False)
    assert w.snapshot(top) == others
    FIGURES.append(
        (
            f"folder delete of {count} files, killed when {what}",
            f"1 trial; the store answered the killed request: {store_said}; files left "
            f"{len(left)}, deleted {count - len(left)}, partial 0; folder listed after the "
            f"restart: {'yes' if code == 200 else 'no'}; retry {retry}; restart {took:.1f} s",
        )
    )


# --------------------------------------------------------------------------- folder rename


@pytest.mark.parametrize("when", ["arrived", "dropped"])
def test_a_folder_rename_killed_at_its_first_delete_batch_is_finished_by_a_retry(
    w: Writers, when: str
) -> None:
    """PATCH of a folder of 300 files to a new name, killed as its first batch delete (the
    sources', after every copy) reaches the proxy, forwarded (``arrived``) or not
    (``dropped``). Proves: the client gets no 2xx; no file is lost (each is in the
    destination with its content, and still in the source or not); a save made in the
    destination through the restarted server is acknowledged; after the lease
    (rename_lease=8 s), the rename sent again answers 200, and every file is in the
    destination exactly once, with its content, that save kept (not undone by the
    source's older version); nothing is left in the source, no ``.s3contents-rename``
    claim anywhere."""
    top = f"ren-{when}"
    files = w.seed(f"{top}/A", FOLDER_FILES)
    app = w.apps[0]
    w.proxies[0].reset()
    dead = kill_at(w, when, method="POST", query_has="delete")
    with pytest.raises(NO_ANSWER):
        app.status_of(api_path(f"{top}/A"), "PATCH", {"path": f"{top}/B"})
    assert dead.wait(30)
    settle(w)
    store_said = answered(w, "POST", "", "delete")

    half = w.snapshot(top)
    moved = {p.replace(f"{top}/A/", f"{top}/B/", 1): c for p, c in files.items()}
    lost = sorted(p for p, c in moved.items() if half.get(p) != c)
    assert lost == [], lost[:5]  # every copy was made before any delete
    sources = [p for p in half if p in files]
    assert all(half[p] == files[p] for p in sources)
    assert len(sources) in (0, FOLDER_FILES), len(sources)  # one batch: all or none
    claims = {p: json.loads(half[p]) for p in claims_in(half)}
    assert set(claims) == {f"{top}/A/.s3contents-rename", f"{top}/B/.s3contents-rename"}

    app, took = restart(w)
    # The user goes on working in the destination (acknowledged), before the retry.
    edited = {"type": "file", "format": "text", "content": "edited after the crash"}
    assert app.status_of(api_path(f"{top}/B/f0007.txt"), "PUT", edited) == 200
    expires = max(c["expires"] for c in claims.values())
    time.sleep(max(0.0, expires - time.time()) + 0.5)  # the lease runs out
    code, body = app.call(api_path(f"{top}/A"), "PATCH", {"path": f"{top}/B"})
    assert code == 200, body
    after = w.snapshot(top)
    assert claims_in(after) == []
    expected = dict(moved)
    expected[f"{top}/B/f0007.txt"] = b"edited after the crash"
    assert after == expected  # every file once, in B, with its content; the edit kept
    assert app.status_of(api_path(f"{top}/A")) == 404
    assert len(app.api(api_path(f"{top}/B"))["content"]) == FOLDER_FILES
    FIGURES.append(
        (
            f"folder rename of {FOLDER_FILES} files, killed when its first delete batch {when}",
            f"1 trial; the store answered the killed batch: {store_said}; sources left "
            f"after the kill: {len(sources)}; lost 0, duplicated 0 after the retry, the "
            f"edit kept; retry 200 after the lease; restart {took:.1f} s",
        )
    )
