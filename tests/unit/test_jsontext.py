"""``s3contents.jsontext``: the same text as ``json.dumps``, the same values and errors as
``json.loads``, whatever the pieces."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from jupyter_client.jsonutil import json_default

from s3contents import jsontext

NOW = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
LONG = 'aé😀\ud800\x00"\\\n\u2028' * 20000  # every kind of escape, a lone surrogate too

VALUES: list[Any] = [
    None,
    True,
    0,
    -1.5,
    float("nan"),
    float("inf"),
    10**30,
    "",
    LONG,
    [],
    {},
    (),
    [[[]]],
    {"a": [{"b": ()}] * 100},
    {3: "int key", 2.5: "float key", True: "bool key", None: "null key", "s": NOW},
    {"content": [{"name": f"n{i}", "last_modified": NOW, "size": i} for i in range(500)]},
    {"cells": [{"source": LONG, "outputs": [{"text": [LONG, "x"]}]}] * 3, "nested": {"x": LONG}},
    list(range(1000)),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dumps_is_json_dumps(value: Any) -> None:
    expected = json.dumps(value, default=json_default)
    assert jsontext.dumps(value, default=json_default) == expected
    assert json.dumps(jsontext.loads(expected)) == json.dumps(json.loads(expected))


def test_dumps_raises_as_json_dumps() -> None:
    for bad in ({(1, 2): "tuple key"}, [object()] * 100, {"x": {object()}}):
        with pytest.raises(TypeError):
            json.dumps(bad)
        with pytest.raises(TypeError):
            jsontext.dumps(bad)


@pytest.mark.parametrize(
    "text", ["", "{", "[1,]", '{"a" 1}', "nul", '"\\x"', "[1] x", "{'a': 1}", "\x1c{}", "[" * 10]
)
def test_loads_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsontext.loads(text)
