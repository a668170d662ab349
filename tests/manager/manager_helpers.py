"""Helpers shared by the manager tests: boto3 views of a bucket, sample notebooks."""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output


def keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (recursive), sorted."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def delimited(s3: Any, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """One level under ``prefix``: (keys, common prefixes)."""
    keys: list[str] = []
    prefixes: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    for page in pages:
        keys.extend(item["Key"] for item in page.get("Contents", []))
        prefixes.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
    return sorted(keys), sorted(prefixes)


def sample_notebook(text: str = "print('hi')", with_output: bool = True) -> dict[str, Any]:
    """A small nbformat 4 notebook (as a plain dict), with one output when asked."""
    outputs = [new_output("stream", name="stdout", text="hi\n")] if with_output else []
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            new_code_cell(text, execution_count=1 if with_output else None, outputs=outputs),
        ]
    )
    return dict(nbformat.from_dict(nb))


def notebook_bytes(nb: dict[str, Any] | None = None) -> bytes:
    """A notebook serialised as Jupyter writes it."""
    return nbformat.writes(nbformat.from_dict(nb or sample_notebook())).encode() + b"\n"
