"""Turn measurements into the Markdown report (``docs/benchmarks.md``)."""

from __future__ import annotations

from . import workload as w
from .proxy import KINDS
from .workload import Result


def format_counts(counts: dict[str, int]) -> str:
    """``{"LIST": 1, "HEAD": 50}`` -> ``"1 LIST, 50 HEAD (51)"``; no requests -> ``"none"``."""
    parts = [f"{counts[k]} {k}" for k in KINDS if counts.get(k)]
    if not parts:
        return "none"
    total = sum(counts.values())
    return ", ".join(parts) + (f" ({total})" if len(parts) > 1 else "")


def format_requests(result: Result) -> str:
    if not result.counts:
        return "-"
    text = format_counts(result.counts[0])
    misses = result.statuses[0]
    if misses:
        text += " [" + ", ".join(f"{n}x {code}" for code, n in sorted(misses.items())) + "]"
    later = []
    for counts in result.counts[1:]:
        shown = format_counts(counts)
        if counts != result.counts[0] and shown not in later:
            later.append(shown)
    if later:
        # Some managers cache: say what a repeat of the same operation costs.
        text += "; repeated: " + " / ".join(later)
    return text


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 10_000:
        return f"{ms:.0f} ms"
    return f"{seconds:.1f} s"


def time_cell(result: Result, notes: list[str], name: str) -> str:
    if result.error:
        notes.append(f"{name}, {result.op}: {result.error}")
        return f"**failed** [{len(notes)}]"
    return format_time(result.median)


def table(results: dict[str, list[Result]]) -> tuple[str, list[str]]:
    """The Markdown table (one column pair per package) and its numbered failure notes."""
    names = list(results)
    notes: list[str] = []
    header = ["Operation"] + [f"S3 requests ({n})" for n in names]
    header += [f"time ({n})" for n in names]
    both = names == ["new", "old"]
    if both:
        header.append("old ÷ new")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in zip(*results.values(), strict=True):
        cells = [row[0].op]
        cells += [format_requests(r) for r in row]
        cells += [time_cell(r, notes, n) for n, r in zip(names, row, strict=True)]
        if both:
            new, old = row
            if new.median and old.median and not (new.error or old.error):
                cells.append(f"{old.median / new.median:.1f}x")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


def document(
    results: dict[str, list[Result]],
    facts: dict[str, dict[str, str]],
    machine: dict[str, str],
    delay_ms: float,
    repeat: int,
    command: str,
) -> str:
    body, notes = table(results)
    out = [
        "# Benchmarks: S3 requests and latency per contents operation",
        "",
        "Each contents operation is sent to a live Jupyter Server through its REST API",
        "(`/api/contents`). The server's `S3ContentsManager` talks to a local SeaweedFS through a",
        "counting proxy, which classifies and counts every S3 request and delays each one by",
        f"**{delay_ms:g} ms** before forwarding it, to stand for the round trip to a cloud region",
        "(loopback has none). `new` is this repository's package; `old` is `s3contents` 0.13.0",
        "from PyPI, in the same run against the same storage, each in a bucket of its own.",
        "",
        f"Generated {machine['date']} by `{command}`.",
        "",
        "## Results",
        "",
        f"Time is the median wall time of {repeat} repetitions of the REST call, seen by the",
        "client. S3 requests are those of the first repetition; `repeated:` follows when a",
        "repetition needed a different set (e.g. thanks to a cache). Kinds: LIST (ListObjects),",
        "GET, HEAD, PUT (incl. UploadPart), COPY, DELETE (incl. batch DeleteObjects), POST",
        "(multipart create/complete), OTHER. `[nx 404]` counts requests answered",
        "'not found', as existence checks are. `old ÷ new` > 1 means the new package is faster.",
        "",
        body,
        "",
    ]
    if notes:
        out += ["Failures:", ""]
        out += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
        out.append("")
    if "old" in results:
        out += [
            "Reading the `old` column: s3contents 0.13 keeps checkpoints on the Jupyter",
            "server's local disk (`GenericFileCheckpoints`), not in S3, so listing them costs",
            "no S3 request (and they are lost with the server's disk), while creating or",
            "restoring one reads or writes the notebook through S3. Its s3fs client keeps a",
            "listing cache that some calls fill and others invalidate, hence the `repeated:`",
            "variants. Its methods are synchronous: they block Jupyter's event loop, so other",
            "requests to the server wait meanwhile.",
            "",
        ]
    out += [
        "## Workload",
        "",
        "Seeded straight into each bucket (not measured) under the prefix `notebooks/`, with a",
        "`.s3keep` marker in every folder, as s3contents 0.13 makes them:",
        "",
        f"- `big/`: {w.BIG_NOTEBOOKS} notebooks of {len(w.SMALL_NB) / 1000:.1f} KB and "
        f"{w.BIG_FOLDERS} subfolders, each holding one small file;",
        f"- `save/`: a {len(w.MEDIUM_NB) / 1000:.0f} KB notebook ({w.MEDIUM_CELLS} code cells) "
        f"and a {len(w.LARGE_NB) / 1e6:.1f} MB one",
        f"  ({w.LARGE_CELLS} cells with {w.LARGE_OUTPUT / 1000:.0f} KB of output each), so "
        "that every save overwrites, as saving an open notebook does;",
        f"- folders of {w.FOLDER_FILES} small files to rename and to delete, one per repetition.",
        "",
        "Operations: list `big/` (`GET /api/contents/big`); open a notebook (`content=1`) and",
        "read its metadata (`content=0`); save the two notebooks (`PUT`, type notebook); create",
        "an untitled notebook in an empty folder (`POST` to the folder); rename a notebook and a",
        "200-file folder (`PATCH`); delete a 200-file folder (`DELETE`); create, list and restore",
        "a checkpoint. Every outcome is checked (status code, then the new state through the API",
        "or in the bucket), so a broken operation shows as failed, not as fast.",
        "",
        "## Setup",
        "",
        "| | |",
        "|---|---|",
    ]
    for key, value in machine.items():
        if key != "date":
            out.append(f"| {key} | {value} |")
    for name, versions in facts.items():
        listed = ", ".join(f"{k} {v}" for k, v in versions.items())
        out.append(f"| `{name}` environment | {listed} |")
    out += [
        f"| S3 request delay | {delay_ms:g} ms per request, added by the proxy |",
        f"| repetitions | {repeat} |",
        "",
        "## How to reproduce",
        "",
        "```sh",
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]"',
        ".venv/bin/python -m benchmarks --delay-ms 20",
        "```",
        "",
        "The first run creates `benchmarks/.work/old-venv` (Python >= 3.12, `s3contents==0.13.0`",
        "and `jupyter_server` from PyPI); later runs reuse it. Options: `--delay-ms`,",
        "`--repeat N`, `--only new|old`, `--out PATH` (this file by default). SeaweedFS, the",
        "proxy and both Jupyter Servers listen on free 127.0.0.1 ports and are stopped at the",
        "end; their logs stay in `benchmarks/.work/logs/`.",
        "",
    ]
    return "\n".join(out)
