"""Turn measurements into the Markdown report (``docs/benchmarks.md``)."""

from __future__ import annotations

from tests.support.proxy import KINDS

from . import workload as w
from .large import CHUNK, LargeResult, Phase, mibps
from .workload import Result

#: Targets by storage: (table heading, server, request noun, {target: column name}).
GROUPS = (
    ("S3", "SeaweedFS", "S3 requests", {"new": "new", "old": "old", "local": "local"}),
    ("GCS", "fake-gcs-server", "GCS requests", {"gcs": "new", "gcs-old": "old"}),
)
#: Row names of the large-file table.
LABELS = {
    "new": "new on S3",
    "old": "old on S3",
    "local": "local disk (AsyncLargeFileManager)",
    "gcs": "new on GCS",
    "gcs-old": "old on GCS",
}
#: The event-loop stall the package steers by (issue 14).
STALL_GOAL_MS = 50


def format_counts(counts: dict[str, int]) -> str:
    """``{"LIST": 1, "HEAD": 50}`` -> ``"1 LIST, 50 HEAD (51)"``; no requests -> ``"none"``."""
    parts = [f"{counts[k]} {k}" for k in KINDS if counts.get(k)]
    if not parts:
        return "none"
    total = sum(counts.values())
    return ", ".join(parts) + (f" ({total})" if len(parts) > 1 else "")


def format_misses(statuses: dict[int, int]) -> str:
    if not statuses:
        return ""
    return " [" + ", ".join(f"{n}x {code}" for code, n in sorted(statuses.items())) + "]"


def format_requests(result: Result) -> str:
    if not result.counts:
        return "-"
    text = format_counts(result.counts[0]) + format_misses(result.statuses[0])
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
    text = format_time(result.median)
    if 0 < len(result.times) < result.wanted:
        text += f" ({len(result.times)} run{'s' if len(result.times) > 1 else ''})"
    return text


def table(results: dict[str, list[Result]], noun: str, notes: list[str]) -> str:
    """One Markdown table, a column pair per package (keys: column names, e.g. new, old);
    failures are appended to ``notes`` and referred to by number."""
    names = list(results)
    header = ["Operation"] + [f"{noun} ({n})" for n in names]
    header += [f"time ({n})" for n in names]
    both = "new" in names and "old" in names
    if both:
        header.append("old ÷ new")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in zip(*results.values(), strict=True):
        cells = [row[0].op]
        # The local target makes no storage requests: "-", not "none".
        cells += [
            format_requests(r) if n != "local" else "-" for n, r in zip(names, row, strict=True)
        ]
        cells += [time_cell(r, notes, f"{noun} ({n})") for n, r in zip(names, row, strict=True)]
        if both:
            new, old = row[names.index("new")], row[names.index("old")]
            if new.median and old.median and not (new.error or old.error):
                ratio = old.median / new.median
                cells.append(f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_ms(seconds: float | None, goal: bool = False) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    text = f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"
    return f"**{text}**" if goal and ms > STALL_GOAL_MS else text


def stall_table(results: dict[str, list[Result]]) -> str:
    """Longest event-loop stall and server CPU per operation, a column per target."""
    names = list(results)
    header = ["Operation"] + [f"stall ms ({n})" for n in names]
    header += [f"CPU ms ({n})" for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in zip(*results.values(), strict=True):
        cells = [row[0].op]
        cells += [format_ms(r.stall, goal=True) if not r.error else "-" for r in row]
        cells += [format_ms(r.cpu) if not r.error else "-" for r in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_table(curves: dict[str, list[Result]], noun: str) -> str:
    """A curve: a row per size, per target its time, requests, stall and CPU."""
    names = list(curves)
    header = ["N"]
    for n in names:
        header += [f"time ({n})", f"requests ({n})", f"stall ms ({n})", f"CPU ms ({n})"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sizes = sorted({r.n for rs in curves.values() for r in rs})
    for size in sizes:
        cells = [f"{size} {noun}"]
        for n in names:
            r = next((r for r in curves[n] if r.n == size), None)
            if r is None:
                cells += ["-"] * 4
            elif r.skipped:
                cells += [f"skipped: {r.skipped}", "-", "-", "-"]
            elif r.error:
                cells += [f"**failed**: {r.error[:120]}", "-", "-", "-"]
            else:
                runs = f" ({len(r.times)} run{'s' if len(r.times) > 1 else ''})"
                cells += [
                    format_time(r.median) + runs,
                    format_requests(r) if n != "local" else "-",
                    format_ms(r.stall, goal=True),
                    format_ms(r.cpu),
                ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _kept_section(previous: str, heading: str) -> list[str]:
    """``## Results: GCS ...`` of the previous report, up to the next ``## ``, with its date;
    [] if it had none."""
    start = previous.find(f"## Results: {heading}")
    if start < 0:
        return []
    end = previous.find("\n## ", start + 1)
    body = previous[start : end if end > 0 else len(previous)].strip().splitlines()
    found = [line for line in previous.splitlines() if line.startswith("Generated ")]
    when = found[0].removeprefix("Generated ").rstrip(".") if found else "an earlier run"
    title, rest = body[0], body[1:]
    # The generic notes on the old package follow the tables anyway: not twice.
    while "Reading the `old` columns:" in "\n".join(rest):
        text = "\n".join(rest)
        start = text.index("Reading the `old` columns:")
        stop = text.find("\n\n", start)
        rest = (text[:start] + (text[stop + 2 :] if stop > 0 else "")).splitlines()
    if "(kept from an earlier run)" in title:
        return [title, *rest, ""]  # kept already: as it was
    return [
        f"{title} (kept from an earlier run)",
        "",
        "Not measured in this run: this section is copied unchanged from the report",
        f"generated {when}, with the workload of that time (a 5 MB notebook where",
        "this run saves a 10 MB one; no stall or CPU measurements).",
        *rest,
        "",
    ]


def tables(results: dict[str, list[Result]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """``[(heading, server, table)]`` for each storage measured, and the failure notes."""
    notes: list[str] = []
    out = []
    for heading, server, noun, columns in GROUPS:
        mine = {col: results[target] for target, col in columns.items() if target in results}
        if mine:
            out.append((heading, server, table(mine, noun, notes)))
    return out, notes


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / CHUNK:.0f} MiB"


def _speed(r: LargeResult, phase: Phase, note: int | None) -> str:
    if phase.seconds is None:
        return f"**failed** [{note}]" if note else "-"
    return (
        f"{mibps(r.size, phase.seconds)} MiB/s ({phase.seconds:.1f} s, server CPU "
        f"{phase.cpu:.1f} s, longest stall {format_ms(phase.stall, goal=True)} ms)"
    )


def _memory(phase: Phase) -> str:
    if phase.seconds is None:
        return "-"
    grown = max(0, phase.rss_peak - phase.rss_before)
    text = f"{_mib(phase.rss_before)} → **{_mib(phase.rss_peak)}** (+{_mib(grown)})"
    if phase.hwm is not None:
        text += f" ({_mib(phase.hwm)})"
    return text


def _phase_requests(phase: Phase) -> str:
    if phase.seconds is None:
        return "-"
    return format_counts(phase.counts) + format_misses(phase.statuses)


def large_table(large: dict[str, LargeResult], notes: list[str]) -> str:
    """The large-file table, a row per target; failures are appended to ``notes``."""
    header = [
        "Package and storage",
        "upload",
        "server RSS: before → peak during upload (kernel's peak)",
        "download",
        "server RSS: before → peak during download (kernel's peak)",
        "SHA-256 round trip",
        "requests: upload",
        "requests: download",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in large.items():
        note = None
        if r.error:
            notes.append(f"large file, {LABELS.get(name, name)}: {r.error}")
            note = len(notes)
        roundtrip = {True: "identical", False: "**differs**"}.get(r.roundtrip_ok, "-")
        if not r.sha_received:
            roundtrip = "-"
        cells = [
            LABELS.get(name, name),
            _speed(r, r.upload, note),
            _memory(r.upload),
            _speed(r, r.download, note) + (" via `/api/contents`*" if r.files_status else ""),
            _memory(r.download),
            roundtrip,
            _phase_requests(r.upload) if name != "local" else "-",
            _phase_requests(r.download) if name != "local" else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    fallback = [LABELS.get(n, n) for n, r in large.items() if r.files_status]
    if fallback:
        status = next(r.files_status for r in large.values() if r.files_status)
        lines += [
            "",
            f"\\* `GET /files/` answered {status} ({', '.join(fallback)}): s3contents 0.13",
            "serves `/files/` with Jupyter's `AuthenticatedFileHandler` from the server's local",
            "working directory, not from the bucket. Its download was therefore measured",
            "through the contents API,",
            "`GET /api/contents/{path}?type=file&format=base64&content=1` (as JupyterLab opens",
            "a file), which the client reads whole and decodes.",
        ]
    return "\n".join(lines)


def _failures(notes: list[str], start: int) -> list[str]:
    if len(notes) <= start:
        return []
    out = ["Failures:", ""]
    out += [f"{i}. {note}" for i, note in enumerate(notes, 1) if i > start]
    return [*out, ""]


def document(
    results: dict[str, list[Result]],
    large: dict[str, LargeResult],
    facts: dict[str, dict[str, str]],
    machine: dict[str, str],
    delay_ms: float,
    repeat: int,
    large_mb: int,
    command: str,
    budget: float = float("inf"),
    curves: dict[str, dict[str, list[Result]]] | None = None,
    pages: dict[str, list[Result]] | None = None,
    chart: str | None = None,
    previous: str = "",
    curve_budget: float = float("inf"),
) -> str:
    curves = curves or {}
    pages = pages or {}
    groups, notes = tables(results)
    measured = {heading for heading, _, _ in groups}
    out = [
        "# Benchmarks: storage requests, latency and memory per contents operation",
        "",
        "Each contents operation is sent to a live Jupyter Server through its REST API",
        "(`/api/contents`, `/files/`). The server's contents manager talks to a local storage",
        "server through a counting proxy, which classifies and counts every request and delays",
        f"each one by **{delay_ms:g} ms** before forwarding it (except in the large-file test),",
        "to stand for the round trip to a cloud region (loopback has none). `new` is this",
        "repository's package; `old` is `s3contents` 0.13.0 from PyPI, in the same run",
        "against the same storage, each in a bucket of its own. S3 is a local SeaweedFS",
        "(`S3ContentsManager`); GCS is fake-gcs-server, Google's JSON API emulated in memory",
        "(`GCSContentsManager`). `local` is the reference: jupyter_server's own",
        "`AsyncLargeFileManager` on a local folder seeded with the same files (no storage",
        "requests: `-`), measured in the same run with the same REST calls.",
        "",
        "**Event-loop stall**: while each measured call runs, a second client on a connection",
        "of its own polls `GET /api/status` back to back; the longest single wait is how long",
        "the server's event loop was held (a few ms when it is free). The goal we steer by:",
        f"no operation holds the loop more than **{STALL_GOAL_MS} ms** (bold when it does).",
        "**CPU** is the Jupyter Server process's user + system time (`/proc/PID/stat`, all",
        "its threads) from the start of the call until the storage went quiet after it,",
        "less the status polls' share (their CPU cost per poll is measured once per server",
        "and subtracted). Both are medians over the repetitions; the clock's tick (10 ms)",
        "limits the CPU's resolution. The polling client, the harness, the storage server",
        "and Jupyter share the machine's cores, so on a loaded machine a stall of a few tens",
        "of ms can be the scheduler's rather than the server's. `local` shows what",
        "jupyter_server itself holds the loop for (its handlers encode and decode the JSON",
        "models on the loop, e.g. a 10 MB notebook), which no contents manager avoids.",
        "",
        f"Generated {machine['date']} by `{command}`.",
        "",
        f"Time is the median wall time of {repeat} repetitions of the REST call, seen by the",
        f"client; an operation is not repeated once its repetitions took {budget:g} s, and",
        "`(1 run)` then says how many were made. Requests are those of the first repetition;",
        "`repeated:` follows when a repetition needed a different set (e.g. thanks to a",
        "cache). Kinds: LIST, GET, HEAD (metadata of one object or bucket), PUT (incl.",
        "multipart parts), COPY, DELETE (incl. batch deletions, one per request), POST (start",
        "or completion of a multipart upload), OTHER. `[nx 404]` counts requests answered",
        "'not found', as existence checks are.",
        "`old ÷ new` > 1 means the new package is faster.",
        "",
    ]
    for heading, server, body in groups:
        out += [f"## Results: {heading} ({server})", ""]
        if heading == "S3" and "local" in results:
            out += [
                "`local` makes no storage requests; its column is there for the times.",
                "",
            ]
        if heading == "GCS":
            out += [
                "GCS JSON API requests, classified as: `GET .../o?prefix=` (objects.list) LIST,",
                "`GET .../o/NAME?alt=media` GET, `GET .../o/NAME` (metadata) HEAD, an upload in",
                "one request (`POST /upload/...`) or the bytes of a resumable one (`PUT` to the",
                "session URI) PUT, the start of a resumable upload POST, `.../rewriteTo/...` COPY,",
                "`DELETE` and the batch endpoint (`/batch/storage/v1`, up to 100 deletions per",
                "request) DELETE. The emulator hands out the proxy's address for resumable",
                "sessions, so their bytes are counted too.",
                "",
            ]
        out += [body, ""]
        columns = next(c for h, _, _, c in GROUPS if h == heading)
        mine = {col: results[t] for t, col in columns.items() if t in results}
        out += [
            f"Longest event-loop stall and server CPU per operation ({heading}):",
            "",
            stall_table(mine),
            "",
        ]
    if "GCS" not in measured:
        out += _kept_section(previous, "GCS")
    out += _failures(notes, 0)
    seen = len(notes)
    if "old" in results or "gcs-old" in results:
        out += [
            "Reading the `old` columns: s3contents 0.13 keeps checkpoints on the Jupyter",
            "server's local disk (`GenericFileCheckpoints`), not in the bucket, so listing them",
            "costs no request (and they are lost with the server's disk), while creating or",
            "restoring one reads or writes the notebook through the bucket. Its s3fs and gcsfs",
            "clients keep listing caches that some calls fill and others invalidate, hence the",
            "`repeated:` variants. Its methods are synchronous: they block Jupyter's event loop,",
            "so other requests to the server wait meanwhile.",
            "",
        ]
    if "GCS" in measured and "gcs-old" in results:
        out += [
            "The old package's `GCSContentsManager` has no endpoint setting; it reaches the",
            "emulator through gcsfs's `STORAGE_EMULATOR_HOST` (with `token = 'anon'`), and",
            "`GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false` keeps recent gcsfs from probing the",
            "bucket type over gRPC, which stalls for about a minute against an emulator.",
            "",
        ]
    if curves:
        names = ", ".join(f"`{n}`" for n in curves)
        out += [
            "## Curves: listing and renaming as folders grow",
            "",
            f"Targets {names}, in the same servers after the workload. A folder of N notebooks",
            "(the 2.6 KB ones of `big/`, no subfolders) is listed (`GET /api/contents/folder`,",
            f"median of up to {repeat} repetitions, as above); a folder of N small files is",
            "renamed (`PATCH`), once per size (each needs a fresh folder), and checked in the",
            "storage. Seeded straight into the storage (boto3, concurrently; plain files for",
            "`local`). A point is skipped when its time, extrapolated linearly from the",
            f"previous size, would pass {curve_budget:g} s (`--curve-budget-s`); the table",
            "says so. Stall and CPU as above. The GCS targets have no curves.",
            "",
        ]
        if chart:
            out += [f"![listing and renaming against folder size]({chart})", ""]
        lists = {n: c["list"] for n, c in curves.items()}
        renames = {n: c["rename"] for n, c in curves.items()}
        out += ["### List a folder of N notebooks", "", curve_table(lists, "notebooks"), ""]
        out += ["### Rename a folder of N files", "", curve_table(renames, "files"), ""]
    if pages:
        out += [
            "## Listing with AWS's page size (`--aws-pages`)",
            "",
            "SeaweedFS (like moto) answers a ListObjectsV2 with as many keys as `max-keys`",
            "asks, and the new adapter asks for large pages; AWS S3 (and GCS) return at most",
            "1000 keys a page. Here the proxy rewrites `max-keys` to min(asked, 1000) (and signs",
            "the request again), so each listing takes as many requests as it would on AWS:",
            "a folder of 2500 entries is 3 LISTs. Same folders and method as the curves; each",
            "folder also holds its marker object, so N notebooks are N + 1 keys (1000",
            "notebooks: 2 pages). S3 targets only (the GCS adapter's pages are not capped here).",
            "",
            curve_table(pages, "notebooks"),
            "",
        ]
    if large:
        out += [
            "## Large files",
            "",
            f"A {large_mb} MiB file of random bytes is uploaded as JupyterLab does it:",
            f"{large_mb} sequential `PUT /api/contents/{{path}}`, each carrying 1 MiB as",
            '`{"type": "file", "format": "base64", "chunk": 1, 2, …, -1, "content": …}` (the',
            "bodies are made before the clock starts). It is then downloaded with",
            "`GET /files/{path}`, read in pieces and hashed as it arrives. **No delay** is added",
            "by the proxy here (it still counts requests): the speeds are those of this",
            "machine's loopback, CPU and storage servers, and on GCS mostly the emulator's.",
            "A thread samples the resident memory (RSS) of the Jupyter Server process and its",
            "children from `/proc` every 50 ms. `before` is the server's RSS when the phase",
            "starts (after the workload above ran in the same server), `+` the growth to the",
            "sampled peak, and `kernel's peak` the process's `VmHWM`, reset through",
            "`/proc/PID/clear_refs` before each phase, which catches what falls between two",
            "samples. `server CPU` is the CPU time the Jupyter Server process used meanwhile,",
            "and `longest stall` the longest `GET /api/status` wait of a client polling beside",
            "the transfer.",
            "The harness (client and proxy) runs on the same 2 cores as the server and storage.",
            "",
            "During the upload, Jupyter's contents handler asks the manager whether the file",
            "exists before saving each chunk: the new package asks the store once, at chunk 1",
            "(one `HEAD`, 404 for a new file), and its upload answers the other chunks (the old",
            "package lists and checks for each chunk). The new package then sends a part per",
            "8 MiB and completes the upload; on S3 one more `HEAD` reads the object's date, which",
            "S3's answer to the completion lacks, while GCS's final answer is the object. On GCS,",
            "fake-gcs-server takes longer for each",
            "piece of a resumable upload the more it has received already, so GCS upload speeds",
            "here say more about the emulator than about GCS.",
            "",
            large_table(large, notes),
            "",
        ]
        out += _failures(notes, seen)
    out += [
        "## Workload",
        "",
        "Seeded straight into each bucket (not measured) under the prefix `notebooks/`, with a",
        "folder marker in every folder (`.s3keep` in S3, `.gcskeep` in GCS), as s3contents 0.13",
        "makes them:",
        "",
        f"- `big/`: {w.BIG_NOTEBOOKS} notebooks of {len(w.SMALL_NB) / 1000:.1f} KB and "
        f"{w.BIG_FOLDERS} subfolders, each holding one small file;",
        f"- `save/`: a {len(w.MEDIUM_NB) / 1000:.0f} KB notebook ({w.MEDIUM_CELLS} code cells) "
        f"and a {len(w.LARGE_NB) / 1e6:.0f} MB one",
        f"  ({w.LARGE_CELLS} cells with {w.LARGE_OUTPUT / 1000:.0f} KB of output each), so "
        "that every save overwrites, as saving an open notebook does;",
        f"- folders of {w.FOLDER_FILES} small files to rename and to delete, one per repetition.",
        "",
        "Operations: list `big/` (`GET /api/contents/big`); open a notebook (`content=1`), and",
        "the large one, and read a notebook's metadata (`content=0`); save the two notebooks",
        "(`PUT`, type notebook); create an untitled notebook in an empty folder (`POST` to the",
        "folder); rename a notebook and a 200-file folder (`PATCH`); delete a 200-file folder",
        "(`DELETE`); create, list and restore a checkpoint. Every outcome is checked (status",
        "code, then the new state through the API or in the bucket), so a broken operation",
        "shows as failed, not as fast. The large file is checked by its SHA-256.",
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
        f"| request delay | {delay_ms:g} ms per request, added by the proxy (none for large "
        "files) |",
        f"| repetitions | {repeat} |",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "python3 -m venv .venv",
        '.venv/bin/pip install -c requirements/lock.txt -e ".[test,bench]"',
        ".venv/bin/python -m benchmarks --delay-ms 20 --curves --aws-pages",
        "```",
        "",
        "The first run creates `benchmarks/.work/old-venv` (Python >= 3.12, `s3contents==0.13.0`",
        "and `jupyter_server` from PyPI; gcsfs comes with s3contents); later runs reuse it.",
        "Options: `--delay-ms MS`, `--repeat N`, `--only new,old,local,gcs,gcs-old` (any of",
        "them, comma-separated: `gcs` is the new package on GCS, `gcs-old` the old one),",
        "`--budget-s S`, `--skip-large`, `--large-mb N` (256 by default), `--curves`",
        "(folder-size curves of the S3 and local targets, and the chart, which needs",
        "matplotlib: `pip install -e '.[bench]'`), `--curve-budget-s S`, `--aws-pages`,",
        "`--chart PATH`, `--out PATH`.",
        "SeaweedFS, fake-gcs-server, the proxies and the Jupyter Servers listen on free",
        "127.0.0.1 ports and are stopped at the end; their logs stay in",
        "`benchmarks/.work/logs/`.",
        "",
    ]
    return "\n".join(out)
