"""Unit tests of the model builders (``s3contents.models``): pure functions, no server."""

from __future__ import annotations

import hashlib
import json
from base64 import b64encode
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.contents.handlers import validate_model
from tornado.web import HTTPError

from s3contents.errors import BadRequest
from s3contents.models import (
    NOTEBOOK_MIMETYPE,
    UNKNOWN_TIME,
    decode_content,
    directory_model,
    encode_content,
    encode_notebook,
    file_model,
    guess_mimetype,
    hash_fields,
    notebook_from_model,
    parse_notebook,
)

WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell("# Grüße, 世界 ✓"))
    nb.cells.append(nbformat.v4.new_code_cell("print('hi')\n1 + 1"))
    return nb


# --------------------------------------------------------------------------- decode_content


def test_decode_text() -> None:
    assert decode_content("héllo\n".encode(), "text", "a.txt") == ("héllo\n", "text")


def test_decode_guesses_text_for_utf8() -> None:
    assert decode_content(b"plain", None, "a.txt") == ("plain", "text")


def test_decode_guesses_base64_for_binary() -> None:
    data = bytes(range(256))
    content, fmt = decode_content(data, None, "a.bin")
    assert fmt == "base64"
    assert encode_content(content, fmt, "a.bin") == data


def test_decode_base64_on_request() -> None:
    content, fmt = decode_content(b"abc", "base64", "a.txt")
    assert fmt == "base64"
    assert content.strip() == b64encode(b"abc").decode()


def test_decode_text_of_non_utf8_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="not UTF-8") as info:
        decode_content(b"\xff\xfe\x00bad", "text", "dir/a.txt")
    assert info.value.path == "dir/a.txt"


@pytest.mark.parametrize("fmt", ["json", "binary", ""])
def test_decode_unknown_format_is_bad_request(fmt: str) -> None:
    with pytest.raises(BadRequest, match="Format must be"):
        decode_content(b"x", fmt, "a.txt")


# --------------------------------------------------------------------------- encode_content


def test_encode_text_is_utf8() -> None:
    assert encode_content("Grüße ✓", "text", "a.txt") == "Grüße ✓".encode()


def test_encode_base64_round_trip() -> None:
    data = bytes(range(256)) * 3
    assert encode_content(b64encode(data).decode(), "base64", "a.bin") == data


@pytest.mark.parametrize(
    "content",
    [
        "YWJ",  # incorrect padding
        "abc",
        "ü==",  # not ASCII at all
    ],
)
def test_encode_bad_base64_is_bad_request(content: str) -> None:
    with pytest.raises(BadRequest, match=r"Encoding error saving a\.bin") as info:
        encode_content(content, "base64", "a.bin")
    assert info.value.path == "a.bin"


def test_encode_text_that_cannot_be_utf8_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="Encoding error"):
        encode_content("lone surrogate \ud800", "text", "a.txt")


@pytest.mark.parametrize("content", [b"bytes", None, 12, ["a"]])
def test_encode_non_string_content_is_bad_request(content: Any) -> None:
    with pytest.raises(BadRequest, match="must be a string"):
        encode_content(content, "text", "a.txt")


@pytest.mark.parametrize("fmt", [None, "json", "TEXT"])
def test_encode_needs_a_known_format(fmt: Any) -> None:
    with pytest.raises(BadRequest, match="'text' or 'base64'"):
        encode_content("x", fmt, "a.txt")


# --------------------------------------------------------------------------- notebooks


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"not json",
        b"[]",
        b"null",
        b"{}",
        b'{"nbformat": 4}',
        b'{"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}}',
        b"\xff\xfe{}",  # not UTF-8
    ],
)
def test_parse_unreadable_notebook_is_bad_request(data: bytes) -> None:
    with pytest.raises(BadRequest, match=r"Unreadable Notebook: f/nb\.ipynb") as info:
        parse_notebook(data, "f/nb.ipynb")
    assert info.value.path == "f/nb.ipynb"


def test_parse_round_trip() -> None:
    nb = _notebook()
    parsed = parse_notebook(encode_notebook(nb), "nb.ipynb")
    assert parsed == nb
    assert parsed.cells[0].source == "# Grüße, 世界 ✓"


def test_parse_converts_old_notebooks_to_v4() -> None:
    v3 = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input="1")])]
    )
    parsed = parse_notebook(nbformat.writes(v3, version=3).encode(), "old.ipynb")
    assert parsed.nbformat == 4
    assert parsed.cells[0].source == "1"


def test_parse_captures_validation_errors() -> None:
    nb = _notebook()
    nb.cells[1]["unexpected"] = 1
    captured: dict[str, Any] = {}
    parsed = parse_notebook(json.dumps(nb).encode(), "nb.ipynb", captured)
    assert parsed.cells[1]["unexpected"] == 1
    assert "ValidationError" in captured


@pytest.mark.parametrize(
    "content",
    [None, "text", [], {"cells": []}, {"nbformat": "4", "cells": []}, {"nbformat": 4, "cells": {}}],
)
def test_notebook_from_model_refuses_non_notebooks(content: Any) -> None:
    with pytest.raises(BadRequest):
        notebook_from_model(content, "nb.ipynb")


def test_notebook_from_model() -> None:
    nb = notebook_from_model(json.loads(json.dumps(_notebook())), "nb.ipynb")
    assert isinstance(nb, nbformat.NotebookNode)
    assert nb.cells[1].source.startswith("print")


def test_encode_notebook_matches_what_jupyter_writes_to_disk(tmp_path: Path) -> None:
    nb = _notebook()
    on_disk = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(on_disk), version=nbformat.NO_CONVERT)
    encoded = encode_notebook(nb)
    assert encoded == on_disk.read_bytes()
    assert encoded.endswith(b"}\n")
    assert "世界".encode() in encoded  # UTF-8, not \\u escapes


async def test_encode_notebook_matches_jupyters_file_manager(tmp_path: Path) -> None:
    from jupyter_server.services.contents.filemanager import AsyncFileContentsManager

    nb = _notebook()
    manager = AsyncFileContentsManager(root_dir=str(tmp_path))
    await manager.save({"type": "notebook", "content": nb}, "saved.ipynb")
    assert encode_notebook(nb) == (tmp_path / "saved.ipynb").read_bytes()


def test_encode_notebook_captures_validation_errors() -> None:
    nb = _notebook()
    nb.cells[0]["unexpected"] = 1
    captured: dict[str, Any] = {}
    encoded = encode_notebook(nb, captured)
    assert b'"unexpected": 1' in encoded
    assert "ValidationError" in captured


def test_encode_unserialisable_notebook_is_bad_request() -> None:
    nb = _notebook()
    nb.metadata["bad"] = {1, 2}
    with pytest.raises(BadRequest, match="cannot be serialised"):
        encode_notebook(nb)


# --------------------------------------------------------------------------- model shapes


def _assert_utc(value: datetime) -> None:
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


def _validate(model: dict[str, Any], expect_content: bool, expect_hash: bool = False) -> None:
    try:
        validate_model(model, expect_content=expect_content, expect_hash=expect_hash)
    except HTTPError as err:  # pragma: no cover - the failure message is the point
        pytest.fail(f"validate_model refused {model}: {err}")


def test_directory_model_without_content() -> None:
    model = directory_model("a/b", WHEN)
    _validate(model, expect_content=False)
    assert model["name"] == "b"
    assert model["path"] == "a/b"
    assert model["type"] == "directory"
    assert model["content"] is None
    assert model["format"] is None
    assert model["created"] == model["last_modified"] == WHEN
    _assert_utc(model["last_modified"])


def test_directory_model_with_content() -> None:
    child = file_model("a/b/c.txt", "file", WHEN, 3)
    model = directory_model("a/b", WHEN, [child])
    _validate(model, expect_content=True)
    assert model["format"] == "json"
    assert model["content"] == [child]
    _validate(child, expect_content=False)


def test_root_directory_model() -> None:
    model = directory_model("", UNKNOWN_TIME, [])
    _validate(model, expect_content=True)
    assert model["name"] == ""
    assert model["path"] == ""
    _assert_utc(model["created"])
    assert datetime(1970, 1, 1, tzinfo=timezone.utc) == UNKNOWN_TIME


def test_file_model_guesses_mimetype() -> None:
    model = file_model("x/data.csv", "file", WHEN, 10)
    _validate(model, expect_content=False)
    assert model["mimetype"] == "text/csv"
    assert model["size"] == 10
    assert model["name"] == "data.csv"
    assert file_model("x/blob", "file", WHEN, 0)["mimetype"] is None


def test_file_model_with_content_and_hash() -> None:
    data = b"hello"
    model = file_model("x/a.txt", "file", WHEN, len(data))
    model["content"], model["format"] = decode_content(data, None, "x/a.txt")
    model.update(hash_fields(data, "sha256"))
    _validate(model, expect_content=True, expect_hash=True)
    assert model["hash"] == hashlib.sha256(data).hexdigest()
    assert model["hash_algorithm"] == "sha256"


def test_notebook_model_has_no_file_mimetype() -> None:
    model = file_model("nb.ipynb", "notebook", WHEN, 100)
    _validate(model, expect_content=False)
    assert model["type"] == "notebook"
    assert model["mimetype"] is None
    model["content"], model["format"] = _notebook(), "json"
    _validate(model, expect_content=True)


def test_models_miss_no_key_validate_model_requires() -> None:
    """Every builder fills every key, including hash fields (None until asked for)."""
    for model in (
        directory_model("d", WHEN),
        file_model("f.txt", "file", WHEN, 1),
        file_model("n.ipynb", "notebook", WHEN, 1),
    ):
        assert {"hash", "hash_algorithm", "size", "writable"} <= set(model)
        assert model["writable"] is True


def test_guess_mimetype() -> None:
    assert guess_mimetype("a.png") == "image/png"
    assert guess_mimetype("a.txt") == "text/plain"
    assert guess_mimetype("noext") is None
    assert NOTEBOOK_MIMETYPE == "application/x-ipynb+json"


@pytest.mark.parametrize("algorithm", ["sha256", "md5", "sha1"])
def test_hash_fields(algorithm: str) -> None:
    assert hash_fields(b"abc", algorithm) == {
        "hash": hashlib.new(algorithm, b"abc").hexdigest(),
        "hash_algorithm": algorithm,
    }
