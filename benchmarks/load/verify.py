"""After the load: is every file there, holding exactly what its owner last saved?

The same check runs twice, on two views of the tree under ``load/``: through the Jupyter
Server's REST API (folders listed recursively, every expected file opened), and straight in
the bucket with boto3, bypassing Jupyter and the proxy (one recursive LIST, every expected
object read).  A file is *lost* when none of its possible paths exists (or when another
client's creation replaced it), *corrupted* when it does not hold one of its possible
contents, *unexpected* when nobody owns it; checkpoints and folder markers are ignored.
Files whose request failed during the run (see :mod:`.clients`) are accepted in any outcome
still possible, and counted apart; so are ``UntitledN.ipynb`` files in a folder where a
creation failed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from .clients import (
    INBOX,
    MARKER,
    PREFIX,
    ROOT,
    SHARED,
    UNTITLED,
    Owned,
    bytes_fp,
    client_dir,
    model_fp,
    split,
)

Fingerprint = tuple[str, str]  # (digest, label)
CHECKPOINTS = ".ipynb_checkpoints"
WORKERS = 8


@dataclass
class Verdict:
    where: str  # "REST API" or "bucket"
    files: int = 0  # files that must exist
    ok: int = 0  # exist once, holding what they must
    uncertain_ok: int = 0  # of ok: files whose last request failed, in a possible state
    lost: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)  # readable but not in their listing
    orphans: list[str] = field(default_factory=list)  # Untitled files of failed creations
    errors: list[str] = field(default_factory=list)  # the check's own requests that failed

    @property
    def clean(self) -> bool:
        return not (self.lost or self.corrupted or self.unexpected or self.unlisted or self.errors)


def judge(
    where: str,
    view: dict[str, set[str]],
    fetched: dict[str, Fingerprint | None],
    files: list[Owned],
    shared: dict[str, Fingerprint],
    failed_creates: Counter[str],
    clients: int,
) -> Verdict:
    """Compare a view of the tree (folder -> names listed; path -> fingerprint read, None
    when not found) with what the clients know."""
    v = Verdict(where)
    claimed: dict[str, set[str]] = {ROOT: {split(client_dir(c))[1] for c in range(clients)}}
    claimed[ROOT] |= {split(SHARED)[1], split(INBOX)[1]}

    def check(paths: list[str], accepted: dict[str, str], uncertain: bool) -> None:
        for p in paths:
            folder, name = split(p)
            claimed.setdefault(folder, set()).add(name)
        v.files += 1
        present = [p for p in paths if fetched.get(p) is not None]
        expected = " or ".join(accepted.values())
        if not present:
            v.lost.append(f"{' or '.join(paths)} ({expected})")
            return
        if len(present) > 1:
            v.unexpected.append(f"{' and '.join(present)}: one file at two paths")
        for p in present:
            folder, name = split(p)
            if name not in view.get(folder, set()):
                v.unlisted.append(f"{p}: readable, but {folder}/ does not list it")
        found = fetched[present[-1]]
        if found is None or found[0] == "error":
            return  # the check's own failure: in v.errors
        if found[0] not in accepted:
            v.corrupted.append(f"{present[-1]}: holds {found[1]}, expected {expected}")
            return
        v.ok += 1
        v.uncertain_ok += uncertain

    for f in files:
        if f.dead:
            v.files += 1
            v.lost.append(f"{f.path} (c{f.client:02d}'s, holding {f.label}): {f.dead}")
            continue
        check(f.paths, f.contents, f.uncertain)
    for path, (fp, label) in shared.items():
        check([path], {fp: label}, False)
    for folder, names in sorted(view.items()):
        for name in sorted(names - claimed.get(folder, set()) - {MARKER}):
            if failed_creates.get(folder) and UNTITLED.fullmatch(name):
                v.orphans.append(f"{folder}/{name}")
            else:
                v.unexpected.append(f"{folder}/{name}")
    for path, found in fetched.items():
        if found is not None and found[0] == "error":
            v.errors.append(f"{path}: {found[1]}")
    return v


def _paths(files: list[Owned], shared: dict[str, Fingerprint]) -> list[str]:
    return sorted({p for f in files if not f.dead for p in f.paths} | set(shared))


def _parallel(fetch: Callable[[str], Fingerprint | None], paths: list[str]):
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(paths, pool.map(fetch, paths), strict=True))


def via_rest(
    url: str,
    token: str,
    files: list[Owned],
    shared: dict[str, Fingerprint],
    failed_creates: Counter[str],
    clients: int,
) -> Verdict:
    base = url.rstrip("/") + "/api/contents/"
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.trust_env = False
            local.http.headers["Authorization"] = f"token {token}"
        return local.http

    problems: list[str] = []
    view: dict[str, set[str]] = {}
    todo = [ROOT]
    while todo:
        folder = todo.pop()
        resp = session().get(base + folder, params={"content": "1"}, timeout=300)
        if resp.status_code != 200:
            problems.append(f"listing {folder}/: HTTP {resp.status_code}")
            continue
        names = view.setdefault(folder, set())
        for entry in resp.json()["content"]:
            names.add(entry["name"])
            if entry["type"] == "directory" and entry["name"] != CHECKPOINTS:
                todo.append(f"{folder}/{entry['name']}")

    def fetch(path: str) -> Fingerprint | None:
        if path.endswith(".ipynb"):
            params = {"type": "notebook", "content": "1"}
        else:
            params = {"type": "file", "format": "text", "content": "1"}
        try:
            resp = session().get(base + path, params=params, timeout=300)
        except requests.RequestException as exc:
            return "error", f"{type(exc).__name__}: {exc}"
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            return "error", f"HTTP {resp.status_code} {resp.text[:200]}"
        return model_fp(path, resp.json())

    fetched = _parallel(fetch, _paths(files, shared))
    verdict = judge("REST API", view, fetched, files, shared, failed_creates, clients)
    verdict.errors += problems
    return verdict


def via_bucket(
    s3,
    bucket: str,
    files: list[Owned],
    shared: dict[str, Fingerprint],
    failed_creates: Counter[str],
    clients: int,
) -> Verdict:
    """``s3``: a boto3 client talking to the storage server directly."""
    view: dict[str, set[str]] = {}
    root = f"{PREFIX}/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{root}{ROOT}/")
    for page in pages:
        for obj in page.get("Contents", []):
            path = obj["Key"][len(root) :]
            if path.endswith("/") or CHECKPOINTS in path.split("/"):
                continue  # SeaweedFS folder entries; checkpoints
            names = path.split("/")
            for i in range(1, len(names)):
                view.setdefault("/".join(names[:i]), set()).add(names[i])

    def fetch(path: str) -> Fingerprint | None:
        try:
            data = s3.get_object(Bucket=bucket, Key=root + path)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            return "error", f"{type(exc).__name__}: {exc}"
        return bytes_fp(path, data)

    fetched = _parallel(fetch, _paths(files, shared))
    return judge("bucket", view, fetched, files, shared, failed_creates, clients)
