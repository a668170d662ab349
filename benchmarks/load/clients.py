"""The simulated users: fixtures, contents, and the client threads.

Every client owns a folder (``load/c07/``) seeded with a few notebooks and text files, and
shares two folders with everybody: ``load/shared/`` (read-only notebooks everybody lists and
opens) and ``load/inbox/`` (where everybody creates untitled notebooks, so clients race for
the same ``UntitledN.ipynb`` names).  A client only ever writes files it owns, so it knows at
every moment what each of them must hold: a save embeds ``(client, sequence number)`` in the
notebook's metadata and in every cell (or in a text file's first line), and the client keeps
the fingerprint of what it sent.  Opens and listings are checked against that knowledge while
the load runs; :mod:`.verify` checks every file after it.

A request that fails leaves its outcome unknown (a save may or may not have been written, a
rename or creation may or may not have happened): the file is then marked *uncertain* with
the outcomes still possible, and the client leaves it alone for the rest of the run.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import nbformat
import requests
from nbformat import v4

PREFIX = "notebooks"  # the contents manager's prefix in the bucket
ROOT = "load"
SHARED = f"{ROOT}/shared"
INBOX = f"{ROOT}/inbox"
MARKER = ".s3keep"  # folder marker, as s3contents 0.13 writes and expects it
SHARED_NOTEBOOKS = 40
SEED_NOTEBOOKS = 4  # per client
SEED_FILES = 2  # per client

#: Operations and their weights (percent of all operations).
OPS = ("list", "open", "save", "new", "rename")
WEIGHTS = (30, 30, 25, 8, 7)
#: Listings of the client's own folder (the rest list ``load/shared/``).
LIST_OWN = 2 / 3
#: Opens of an own file (the rest open a notebook of ``load/shared/``).
OPEN_OWN = 0.8
#: New notebooks created in the client's own folder (the rest in ``load/inbox/``).
NEW_OWN = 0.75
#: A request slower than this is an error (and its outcome unknown).
TIMEOUT = 120.0
#: Error and wrong-answer messages kept per (operation, status).
SAMPLES = 3
#: Names Jupyter gives new notebooks.
UNTITLED = re.compile(r"Untitled\d*\.ipynb")


def client_dir(i: int) -> str:
    return f"{ROOT}/c{i:02d}"


def split(path: str) -> tuple[str, str]:
    folder, _, name = path.rpartition("/")
    return folder, name


# -- contents and fingerprints ---------------------------------------------------------------

_FILLER = "".join(
    f"value_{i} = compute({i}, scale={i % 7}) + offset  # step {i} of the analysis\n"
    for i in range(2000)
)


def make_notebook(client: int, seq: int, rng: random.Random) -> dict[str, Any]:
    """A notebook of 3 to 13 cells (about 2 to 60 KB) stamped with ``(client, seq)``."""
    tag = f"c{client:02d}#{seq}"
    nb = v4.new_notebook()
    nb.metadata["load"] = {"client": client, "seq": seq}
    nb.cells.append(v4.new_markdown_cell(f"# Notebook {tag}\n\nSaved by load client {client}."))
    for i in range(rng.randint(2, 12)):
        n = rng.randint(100, 3000)
        start = rng.randrange(0, len(_FILLER) - n)
        cell = v4.new_code_cell(
            f"# {tag} cell {i}\n" + _FILLER[start : start + n], execution_count=i + 1
        )
        if rng.random() < 0.3:
            size = rng.randint(200, 8000)
            text = (f"{tag} output {i}\n" + _FILLER)[:size]
            cell.outputs = [v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    return dict(nb)


def make_text(client: int, seq: int, rng: random.Random) -> str:
    n = rng.randint(50, 5000)
    start = rng.randrange(0, len(_FILLER) - n)
    return f"client c{client:02d} seq {seq}\n" + _FILLER[start : start + n]


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def notebook_fp(nb: Any) -> tuple[str, str]:
    """(fingerprint, label) of a notebook given as a dict, whether its sources are strings
    (as the REST API and clients have them) or lists of lines (as nbformat stores them)."""
    if not isinstance(nb, dict):
        return "not-a-notebook", f"not a notebook ({type(nb).__name__})"
    cells = []
    for cell in nb.get("cells") or []:
        outputs = [
            [o.get("output_type"), _joined(o.get("text"))] for o in cell.get("outputs") or []
        ]
        cells.append([cell.get("cell_type"), _joined(cell.get("source")), outputs])
    load = (nb.get("metadata") or {}).get("load")
    digest = hashlib.sha256(json.dumps([load, cells], sort_keys=True).encode()).hexdigest()
    if isinstance(load, dict):
        label = f"c{load.get('client', 0):02d}#{load.get('seq')}"
    else:
        label = "empty notebook" if not cells else "unstamped notebook"
    return digest, label


def text_fp(text: str) -> tuple[str, str]:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return digest, (text.split("\n", 1)[0][:40] or "empty file")


def bytes_fp(path: str, data: bytes) -> tuple[str, str]:
    """Fingerprint of a file's stored bytes (read straight from the bucket)."""
    try:
        if path.endswith(".ipynb"):
            return notebook_fp(json.loads(data))
        return text_fp(data.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        return "unreadable", f"unreadable ({type(exc).__name__}, {len(data)} bytes)"


def model_fp(path: str, model: Any) -> tuple[str, str]:
    """Fingerprint of a REST API model's content."""
    if not isinstance(model, dict) or "content" not in model:
        return "no-content", "a model without content"
    if path.endswith(".ipynb"):
        return notebook_fp(model["content"])
    if not isinstance(model["content"], str) or model.get("format") != "text":
        return "not-text", f"format {model.get('format')!r}"
    return text_fp(model["content"])


EMPTY_NOTEBOOK = notebook_fp(dict(v4.new_notebook()))


# -- fixtures --------------------------------------------------------------------------------


def shared_notebooks() -> dict[str, tuple[str, str, bytes]]:
    """``load/shared/`` notebooks: path -> (fingerprint, label, bytes)."""
    out = {}
    for i in range(SHARED_NOTEBOOKS):
        nb = make_notebook(999, i, random.Random(10_000 + i))
        data = nbformat.writes(nbformat.from_dict(nb)).encode()
        out[f"{SHARED}/shared-{i:02d}.ipynb"] = (*notebook_fp(nb), data)
    return out


@dataclass
class Owned:
    """A file a client owns, and what it must hold.

    ``paths`` and ``contents`` have one entry each, unless a request failed and left its
    outcome unknown: then every outcome still possible (first the old one)."""

    client: int
    paths: list[str]
    contents: dict[str, str]  # fingerprint -> label
    dead: str = ""  # why the file no longer counts (another create returned its name)

    @property
    def path(self) -> str:
        return self.paths[-1]

    @property
    def label(self) -> str:
        return next(reversed(self.contents.values()))

    @property
    def uncertain(self) -> bool:
        return len(self.paths) > 1 or len(self.contents) > 1

    @property
    def usable(self) -> bool:
        return not self.uncertain and not self.dead


def seed_objects(clients: int) -> tuple[dict[str, bytes], list[list[Owned]], dict[str, Any]]:
    """Objects to write (API path -> bytes), each client's files, the shared notebooks."""
    objects: dict[str, bytes] = {}
    for folder in (ROOT, SHARED, INBOX):
        objects[f"{folder}/{MARKER}"] = b""
    shared = shared_notebooks()
    for path, (_, _, data) in shared.items():
        objects[path] = data
    owned: list[list[Owned]] = []
    for c in range(clients):
        rng = random.Random(c)
        folder = client_dir(c)
        objects[f"{folder}/{MARKER}"] = b""
        files = []
        for i in range(SEED_NOTEBOOKS):
            nb = make_notebook(c, 0, rng)
            path = f"{folder}/seed-{i}.ipynb"
            objects[path] = nbformat.writes(nbformat.from_dict(nb)).encode()
            files.append(Owned(c, [path], dict([notebook_fp(nb)])))
        for i in range(SEED_FILES):
            text = make_text(c, 0, rng)
            path = f"{folder}/notes-{i}.txt"
            objects[path] = text.encode()
            files.append(Owned(c, [path], dict([text_fp(text)])))
        owned.append(files)
    return objects, owned, {p: (fp, label) for p, (fp, label, _) in shared.items()}


# -- statistics ------------------------------------------------------------------------------


@dataclass
class OpStats:
    count: int = 0  # requests made
    times: list[float] = field(default_factory=list)  # ms, successful requests
    errors: int = 0  # non-2xx answers and exceptions (timeouts included)
    wrong: int = 0  # 2xx answers that contradict what the client knows

    def merge(self, other: OpStats) -> None:
        self.count += other.count
        self.times += other.times
        self.errors += other.errors
        self.wrong += other.wrong


@dataclass
class Samples:
    """Counts of messages by (operation, kind), with a few examples of each."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, op: str, kind: str, message: str) -> None:
        self.counts[op, kind] += 1
        shown = self.examples.setdefault((op, kind), [])
        if len(shown) < SAMPLES:
            shown.append(message)

    def merge(self, other: Samples) -> None:
        self.counts.update(other.counts)
        for key, messages in other.examples.items():
            shown = self.examples.setdefault(key, [])
            shown += messages[: SAMPLES - len(shown)]


class Registry:
    """Who owns which path, across clients: a creation that returns a name already handed
    out (to this client or another one) replaced a file."""

    def __init__(self, files: list[list[Owned]]) -> None:
        self.lock = threading.Lock()
        self.owner: dict[str, Owned] = {f.path: f for owned in files for f in owned}
        self.failed_creates: Counter[str] = Counter()  # folder -> creations of unknown outcome

    def add(self, owned: Owned) -> Owned | None:
        """Register ``owned`` at its path; returns the previous owner of that path."""
        with self.lock:
            prev = self.owner.get(owned.path)
            self.owner[owned.path] = owned
            return prev

    def move(self, old: str, new: str) -> Owned | None:
        with self.lock:
            owned = self.owner.pop(old, None)
            prev = self.owner.get(new)
            if owned is not None:
                self.owner[new] = owned
            return prev

    def failed_create(self, folder: str) -> None:
        with self.lock:
            self.failed_creates[folder] += 1


class Start:
    """Released once, by the harness, when every client thread is ready."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.stop = threading.Event()
        self.deadline = 0.0


# -- the client ------------------------------------------------------------------------------


class Client(threading.Thread):
    """One simulated user, with a session of its own, looping until the deadline."""

    def __init__(
        self,
        idx: int,
        url: str,
        token: str,
        files: list[Owned],
        shared: dict[str, tuple[str, str]],
        registry: Registry,
        start: Start,
        seed: int,
    ) -> None:
        super().__init__(name=f"load-c{idx:02d}", daemon=True)
        self.idx = idx
        self.base = url.rstrip("/") + "/api/contents/"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"token {token}"
        self.http.headers["Content-Type"] = "application/json"
        self.files = files
        self.shared = shared
        self.shared_paths = sorted(shared)
        self.shared_names = {split(p)[1] for p in shared}
        self.registry = registry
        self.start_signal = start
        self.rng = random.Random(seed * 1000 + idx)
        self.seq = 0
        self.stats = {op: OpStats() for op in OPS}
        self.errors = Samples()
        self.wrong = Samples()
        self.failure: str | None = None  # a bug of the harness itself

    # -- plumbing

    def run(self) -> None:
        try:
            self.start_signal.go.wait()
            deadline = self.start_signal.deadline
            while time.monotonic() < deadline and not self.start_signal.stop.is_set():
                op = self.rng.choices(OPS, WEIGHTS)[0]
                getattr(self, f"op_{op}")()
        except Exception as exc:  # the harness's bug, not the server's: reported as such
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.http.close()

    def call(
        self,
        op: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response | None:
        """One timed request; None (and an error counted) unless it answered 2xx."""
        data = None if body is None else json.dumps(body).encode()
        url = self.base + quote(path)
        stats = self.stats[op]
        stats.count += 1
        began = time.perf_counter()
        try:
            resp = self.http.request(method, url, params=params, data=data, timeout=TIMEOUT)
        except requests.RequestException as exc:
            stats.errors += 1
            self.errors.add(op, type(exc).__name__, f"{method} {path}: {str(exc)[:200]}")
            return None
        ms = (time.perf_counter() - began) * 1000
        if not 200 <= resp.status_code < 300:
            stats.errors += 1
            self.errors.add(op, f"HTTP {resp.status_code}", f"{method} {path}: {_message(resp)}")
            return None
        stats.times.append(ms)
        return resp

    def wrong_answer(self, op: str, message: str) -> None:
        self.stats[op].wrong += 1
        self.wrong.add(op, "wrong answer", message)

    def usable(self) -> Owned | None:
        files = [f for f in self.files if f.usable]
        return self.rng.choice(files) if files else None

    def json(self, op: str, resp: requests.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            self.wrong_answer(op, f"{what}: the answer is not JSON ({resp.text[:100]!r})")
            return None

    # -- operations

    def op_list(self) -> None:
        own = self.rng.random() < LIST_OWN
        folder = client_dir(self.idx) if own else SHARED
        resp = self.call("list", "GET", folder, params={"content": "1"})
        if resp is None:
            return
        model = self.json("list", resp, folder)
        if model is None:
            return
        try:
            names = {entry["name"] for entry in model["content"]}
        except (KeyError, TypeError):
            self.wrong_answer("list", f"{folder}: not a folder listing")
            return
        if own:
            certain, possible, untitled = self.expected_names(folder)
        else:
            certain, possible, untitled = self.shared_names, set(), False
        missing, extra = certain - names, names - certain - possible
        if untitled:
            extra = {n for n in extra if not UNTITLED.fullmatch(n)}
        if missing or extra:
            self.wrong_answer(
                "list",
                f"{folder}: {len(missing)} missing {sorted(missing)[:3]}, "
                f"{len(extra)} unexpected {sorted(extra)[:3]}",
            )

    def expected_names(self, folder: str) -> tuple[set[str], set[str], bool]:
        """Names the folder must list, names it may list (outcomes of failed requests), and
        whether a failed creation may have left an ``UntitledN.ipynb`` there."""
        certain: set[str] = set()
        possible: set[str] = set()
        for f in self.files:
            if f.dead:
                continue
            names = {split(p)[1] for p in f.paths if split(p)[0] == folder}
            (possible if f.uncertain else certain).update(names)
        return certain, possible, bool(self.registry.failed_creates.get(folder))

    def op_open(self) -> None:
        f = self.usable() if self.rng.random() < OPEN_OWN else None
        if f is None:
            path = self.rng.choice(self.shared_paths)
            fp, label = self.shared[path]
            accepted = {fp: label}
        else:
            path, accepted = f.path, dict(f.contents)
        if path.endswith(".ipynb"):
            params = {"type": "notebook", "content": "1"}
        else:
            params = {"type": "file", "format": "text", "content": "1"}
        resp = self.call("open", "GET", path, params=params)
        if resp is None:
            return
        model = self.json("open", resp, path)
        if model is None:
            return
        fp, label = model_fp(path, model)
        if fp not in accepted:
            expected = " or ".join(accepted.values())
            self.wrong_answer("open", f"{path}: holds {label}, expected {expected}")

    def op_save(self) -> None:
        f = self.usable()
        if f is None:
            self.op_new()
            return
        self.seq += 1
        path = f.path
        if path.endswith(".ipynb"):
            nb = make_notebook(self.idx, self.seq, self.rng)
            body = {"type": "notebook", "format": "json", "content": nb}
            fp, label = notebook_fp(nb)
        else:
            text = make_text(self.idx, self.seq, self.rng)
            body = {"type": "file", "format": "text", "content": text}
            fp, label = text_fp(text)
        resp = self.call("save", "PUT", path, body)
        if resp is None:
            f.contents[fp] = label  # written or not: both remain possible
            return
        f.contents = {fp: label}
        model = self.json("save", resp, path)
        if model is not None and model.get("path") != path:
            self.wrong_answer("save", f"{path}: the answer names {model.get('path')!r}")

    def op_new(self) -> None:
        folder = client_dir(self.idx) if self.rng.random() < NEW_OWN else INBOX
        resp = self.call("new", "POST", folder, {"type": "notebook"})
        if resp is None:
            self.registry.failed_create(folder)
            return
        model = self.json("new", resp, folder)
        if model is None:
            self.registry.failed_create(folder)
            return
        path = model.get("path")
        if not isinstance(path, str) or split(path)[0] != folder or not path.endswith(".ipynb"):
            self.wrong_answer("new", f"{folder}: created {path!r}")
            self.registry.failed_create(folder)
            return
        owned = Owned(self.idx, [path], dict([EMPTY_NOTEBOOK]))
        prev = self.registry.add(owned)
        if prev is not None and not prev.dead:
            # The create-only promise broken: whatever that file held is gone.
            prev.dead = f"replaced by c{self.idx:02d}'s new notebook"
            self.wrong_answer(
                "new",
                f"{path}: created again (it was c{prev.client:02d}'s, holding {prev.label})",
            )
        self.files.append(owned)

    def op_rename(self) -> None:
        f = self.usable()
        if f is None:
            self.op_list()
            return
        self.seq += 1
        old = f.path
        folder, name = split(old)
        ext = name[name.rfind(".") :] if "." in name else ""
        new = f"{folder}/c{self.idx:02d}-r{self.seq}{ext}"
        resp = self.call("rename", "PATCH", old, {"path": new})
        if resp is None:
            f.paths.append(new)  # moved or not: both remain possible
            return
        f.paths = [new]
        self.registry.move(old, new)
        model = self.json("rename", resp, old)
        if model is not None and model.get("path") != new:
            self.wrong_answer("rename", f"{old} -> {new}: the answer names {model.get('path')!r}")


def _message(resp: requests.Response) -> str:
    """``HTTP 500 Internal Server Error: <Jupyter's message>``, short."""
    text = resp.reason or ""
    try:
        message = resp.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return (f"{text}: {message}" if message else text or resp.text)[:300]
