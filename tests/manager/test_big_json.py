"""Big JSON off the event loop, through a live Jupyter Server on SeaweedFS.

Our ``/api/contents`` handler (:class:`s3contents.handlers.ContentsHandler`) decodes request
bodies over ``OFF_LOOP_BYTES`` and encodes models over it (folders over ``OFF_LOOP_ENTRIES``
entries) in a worker thread, and the manager converts, signs, validates and serialises big
notebooks in worker threads (:mod:`s3contents.notebooks`). Each test here checks that the
threaded path was taken (a spy on it) and that the answer is what jupyter_server's own
handler would send: the same bytes, headers, Etag, 304, and the same 400s for bad bodies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from typing import Any

import nbformat
import pytest
from jupyter_client.jsonutil import json_default
from nbformat import v4
from tornado.httpclient import HTTPResponse

from s3contents import S3ContentsManager, handlers, manager

pytestmark = pytest.mark.usefixtures("jp_serverapp")


def _notebook(outputs: int, output_bytes: int, display: bool = False) -> dict[str, Any]:
    """A notebook mostly of outputs (the size a save's size check must see)."""
    nb = v4.new_notebook()
    for i in range(outputs):
        cell = v4.new_code_cell(source=f"print({i})  # é 😀", execution_count=i + 1)
        text = ("0123456789abcdé\n" * (output_bytes // 16 + 1))[:output_bytes]
        if display:  # rich output: trusted only when marked so, or signed
            cell.outputs = [v4.new_output("display_data", data={"text/html": text})]
        else:
            cell.outputs = [v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


BIG_NB = _notebook(8, 64 * 1024)  # ~520 KB: over the thresholds
SMALL_NB = _notebook(2, 100)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts of the threaded paths taken (the handler's and the manager's)."""
    seen: Counter[str] = Counter()

    def spy(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            seen[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    spy(handlers, "_decode_body")
    spy(handlers, "_encode_model")
    spy(manager, "convert_and_check")
    spy(manager, "parse_and_sign")
    return seen


class Client:
    def __init__(self, http_client: Any, base: str, headers: dict[str, str]) -> None:
        self.http_client = http_client
        self.base = base
        self.headers = headers

    async def fetch(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> HTTPResponse:
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        response: HTTPResponse = await self.http_client.fetch(
            self.base + "/api/contents/" + path,
            method=method,
            body=body,
            headers={**self.headers, **(headers or {})},
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
        )
        return response


@pytest.fixture
def client(http_server_client: Any, jp_auth_header: Any, jp_base_url: str) -> Client:
    return Client(http_server_client, jp_base_url.rstrip("/"), dict(jp_auth_header))


def _expected_body(model: dict[str, Any]) -> bytes:
    """What jupyter_server's ``_finish_model`` sends for ``model``."""
    return json.dumps(model, default=json_default).encode()


@pytest.mark.parametrize("nb", [BIG_NB, SMALL_NB], ids=["big", "small"])
async def test_a_notebook_round_trips_byte_for_byte(
    client: Client,
    jp_serverapp: Any,
    s3: Any,
    s3_config: dict[str, str],
    spies: Counter[str],
    nb: Any,
) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    body = json.dumps({"type": "notebook", "format": "json", "content": nb})
    big = nb is BIG_NB
    assert (len(body) > handlers.OFF_LOOP_BYTES) is big

    r = await client.fetch("PUT", "nb.ipynb", body)
    assert r.code == 201, r.body
    assert r.headers["Location"].endswith("/api/contents/nb.ipynb")
    stored = s3.get_object(Bucket=s3_config["bucket"], Key=f"{s3_config['prefix']}/nb.ipynb")
    assert stored["Body"].read() == nbformat.writes(nbformat.from_dict(nb)).encode() + b"\n"
    r = await client.fetch("PUT", "nb.ipynb", body)  # a save of an existing one: 200
    assert r.code == 200, r.body
    assert spies["_decode_body"] == spies["convert_and_check"] == (2 if big else 0)

    r = await client.fetch("GET", "nb.ipynb")
    assert r.code == 200, r.body
    model = await cm.get("nb.ipynb")
    assert r.body == _expected_body(model)
    assert json.loads(r.body)["content"] == json.loads(json.dumps(model["content"]))
    assert r.headers["Content-Type"] == "application/json"
    assert "Location" not in r.headers
    assert r.headers["Last-Modified"]
    assert r.headers["Etag"] == f'"{hashlib.sha1(r.body).hexdigest()}"'
    assert spies["_encode_model"] == (1 if big else 0)
    assert spies["parse_and_sign"] == (2 if big else 0)  # this GET and cm.get
    # The Etag still answers If-None-Match with a 304, as tornado does.
    again = await client.fetch("GET", "nb.ipynb", headers={"If-None-Match": r.headers["Etag"]})
    assert again.code == 304
    assert again.body == b""


async def test_trust_is_the_same_on_both_paths(
    jp_serverapp: Any, client: Client, spies: Counter[str]
) -> None:
    """Signed when saved with trusted rich output, trusted when opened; untrusted otherwise:
    the threaded signature computation decides as Jupyter's own."""
    cm: S3ContentsManager = jp_serverapp.contents_manager
    for size in (100, 64 * 1024):
        trusted = _notebook(6, size, display=True)
        untrusted = _notebook(6, size, display=True)
        for cell in trusted["cells"]:
            cell["metadata"]["trusted"] = True  # as JupyterLab sends a trusted notebook
        for name, nb in (("t.ipynb", trusted), ("u.ipynb", untrusted)):
            r = await client.fetch("PUT", name, {"type": "notebook", "content": nb})
            assert r.code == 201, r.body
            opened = json.loads((await client.fetch("GET", name)).body)["content"]
            marks = {c["metadata"]["trusted"] for c in opened["cells"]}
            assert marks == {name == "t.ipynb"}, (size, name)
            await cm.delete(name)
    assert spies["convert_and_check"] == spies["parse_and_sign"] == 2  # the big ones


async def test_a_big_folder_is_encoded_off_the_loop(
    client: Client, jp_serverapp: Any, s3: Any, s3_config: dict[str, str], spies: Counter[str]
) -> None:
    n = handlers.OFF_LOOP_ENTRIES + 1
    for i in range(n):
        s3.put_object(
            Bucket=s3_config["bucket"], Key=f"{s3_config['prefix']}/many/f-{i:04d}.txt", Body=b"x"
        )
    r = await client.fetch("GET", "many")
    assert r.code == 200, r.body
    assert r.body == _expected_body(await jp_serverapp.contents_manager.get("many"))
    assert len(json.loads(r.body)["content"]) == n
    assert spies["_encode_model"] == 1
    r = await client.fetch("GET", "many?content=0")  # no entries: on the loop
    assert r.code == 200, r.body
    assert spies["_encode_model"] == 1


#: Bad bodies, each padded past the threshold and not: the same 400 and message either way.
PAD = " " * (handlers.OFF_LOOP_BYTES + 1)
BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "invalid JSON": (b'{"type": "file", "content": "x"', "Invalid JSON in body of request"),
    "not UTF-8": (b'{"type": "file", "content": "\xff"}', "The request body is not UTF-8"),
    "a list": (b'["x"]', "The request body must be a JSON object"),
    "type an int": (b'{"type": 5, "content": "x"}', "'type' must be a string, not int"),
    "control character": (b'\x1c{"type": "file"}', "Invalid JSON in body of request"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH"])
async def test_bad_bodies_answer_the_same_400_big_or_small(
    client: Client, spies: Counter[str], case: str, method: str, monkeypatch: Any
) -> None:
    # Big bodies of few values stay on the loop (OFF_LOOP_QUOTES): these, padded with
    # spaces, take the thread only with that bound out of the way.
    monkeypatch.setattr(handlers, "OFF_LOOP_QUOTES", -1)
    raw, message = BAD_BODIES[case]
    path = {"PUT": "x.txt", "POST": "", "PATCH": "x.txt"}[method]
    if method == "PATCH":
        r = await client.fetch("PUT", "x.txt", {"type": "file", "format": "text", "content": "x"})
        assert r.code == 201
    answers = []
    for body in (raw, raw + PAD.encode()):
        r = await client.fetch(method, path, body)
        answers.append((r.code, json.loads(r.body)["message"]))
    assert answers == [(400, message)] * 2
    assert spies["_decode_body"] == 1


async def test_big_file_round_trips(client: Client, spies: Counter[str]) -> None:
    text = 'line é 😀 \\ " \x01\n' * (handlers.OFF_LOOP_BYTES // 10)
    r = await client.fetch("PUT", "big.txt", {"type": "file", "format": "text", "content": text})
    assert r.code == 201, r.body
    r = await client.fetch("GET", "big.txt")
    assert r.code == 200
    assert json.loads(r.body)["content"] == text
    assert spies["_decode_body"] == spies["_encode_model"] == 1


async def test_a_big_body_of_few_values_is_decoded_on_the_loop(
    client: Client, spies: Counter[str]
) -> None:
    # Like a chunk of an upload: 1 MiB of base64 in one string parses in about a ms;
    # a worker thread would only grow the allocator's memory (issue 14's upload bound).
    content = base64.b64encode(os.urandom(1 << 20)).decode()
    model = {"type": "file", "format": "base64", "content": content}
    r = await client.fetch("PUT", "chunk.bin", model)
    assert r.code == 201
    assert spies["_decode_body"] == 0
