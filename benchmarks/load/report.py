"""Tables of a load run, and the ``## Load`` section of ``docs/reliability.md``."""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.proxy import KINDS

from ..report import format_counts
from .clients import (
    OPS,
    SEED_FILES,
    SEED_NOTEBOOKS,
    SHARED_NOTEBOOKS,
    TIMEOUT,
    WEIGHTS,
    OpStats,
    Samples,
)
from .verify import Verdict

HEADING = "## Load"
LISTED = 4  # lost / corrupted / unexpected files named per kind
WIDTH = 92  # of the report's paragraphs
#: Seconds between two samples of the server's memory.
SAMPLE_EVERY = 0.1


@dataclass
class Outcome:
    """What one package's run measured."""

    name: str
    facts: dict[str, str]
    clients: int
    duration: float
    elapsed: float = 0.0  # from the start to the last client's last answer
    stats: dict[str, OpStats] = field(default_factory=lambda: {op: OpStats() for op in OPS})
    errors: Samples = field(default_factory=Samples)
    wrong: Samples = field(default_factory=Samples)
    harness: list[str] = field(default_factory=list)  # the harness's own failures
    rest: Verdict | None = None
    bucket: Verdict | None = None
    rss_start: int = 0
    rss_peak: int = 0
    hwm: int | None = None
    cpu: float = 0.0
    harness_cpu: float = 0.0  # of this process: the clients and the proxy
    counts: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    per_client: tuple[int, int] = (0, 0)
    tracebacks: int = 0
    log: str = ""

    @property
    def requests(self) -> int:
        return sum(s.count for s in self.stats.values())

    @property
    def successful(self) -> int:
        return sum(len(s.times) for s in self.stats.values())

    @property
    def error_count(self) -> int:
        return sum(s.errors for s in self.stats.values())

    @property
    def wrong_count(self) -> int:
        return sum(s.wrong for s in self.stats.values())

    @property
    def passed(self) -> bool:
        verdicts = (self.rest, self.bucket)
        return (
            not self.error_count
            and not self.wrong_count
            and not self.harness
            and all(v is not None and v.clean for v in verdicts)
        )


def percentile(times: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not times:
        return None
    ordered = sorted(times)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}"
    if value < 10_000:
        return f"{value:.0f}"
    return f"{value / 1000:.1f} s"


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.0f} MiB"


def _files(v: Verdict | None) -> str:
    if v is None:
        return "not checked"
    parts = [
        f"{len(v.lost)} lost",
        f"{len(v.corrupted)} corrupted",
        f"{len(v.unexpected)} unexpected",
    ]
    if v.unlisted:
        parts.append(f"{len(v.unlisted)} not listed")
    if v.errors:
        parts.append(f"{len(v.errors)} unreadable")
    text = f"{v.ok} of {v.files} intact; " + ", ".join(parts)
    if v.uncertain_ok:
        text += f" ({v.uncertain_ok} after a failed request, in a possible state)"
    if v.orphans:
        text += f"; {len(v.orphans)} untitled left by failed creations"
    return text


def summary_table(outcomes: list[Outcome]) -> str:
    names = [o.name for o in outcomes]
    rows: list[tuple[str, list[str]]] = [
        (
            "requests (successful per second)",
            [
                f"{o.requests} in {o.elapsed:.1f} s ({o.successful / o.elapsed:.0f}/s)"
                if o.elapsed
                else "-"
                for o in outcomes
            ],
        ),
        (
            "requests per client (min-max)",
            [f"{o.per_client[0]}-{o.per_client[1]}" for o in outcomes],
        ),
        ("**errors** (non-2xx or exception)", [f"**{o.error_count}**" for o in outcomes]),
        ("wrong answers during the run", [str(o.wrong_count) for o in outcomes]),
        ("**files after the run, REST API**", [_files(o.rest) for o in outcomes]),
        ("**files after the run, in the bucket**", [_files(o.bucket) for o in outcomes]),
        (
            "server RSS: start → **peak** (VmHWM)",
            [f"{mib(o.rss_start)} → **{mib(o.rss_peak)}** ({mib(o.hwm)})" for o in outcomes],
        ),
        (
            "server CPU (share of one core)",
            [f"{o.cpu:.0f} s ({o.cpu / o.elapsed:.0%})" if o.elapsed else "-" for o in outcomes],
        ),
        (
            "harness CPU: clients and proxy (share of one core)",
            [
                f"{o.harness_cpu:.0f} s ({o.harness_cpu / o.elapsed:.0%})" if o.elapsed else "-"
                for o in outcomes
            ],
        ),
        (
            "storage requests (per successful operation)",
            [_storage(o) for o in outcomes],
        ),
        ("tracebacks in the server log", [str(o.tracebacks) for o in outcomes]),
    ]
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def _storage(o: Outcome) -> str:
    if not o.counts:
        return "not counted"
    total = sum(o.counts.values())
    text = format_counts({k: o.counts[k] for k in KINDS if k in o.counts})
    if o.successful:
        text += f", {total / o.successful:.1f}/op"
    errors = {code: n for code, n in sorted(o.statuses.items()) if code != 404}
    if errors:
        text += "; answered " + ", ".join(f"{n}x {code}" for code, n in errors.items())
    return text


def ops_table(outcomes: list[Outcome]) -> str:
    head = ["operation", "share"]
    for o in outcomes:
        head += [f"{o.name}: n", f"{o.name}: p50", f"{o.name}: p99", f"{o.name}: max"]
        head += [f"{o.name}: errors"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    total = sum(WEIGHTS)
    for op, weight in zip(OPS, WEIGHTS, strict=True):
        cells = [op, f"{weight / total:.0%}"]
        for o in outcomes:
            s = o.stats[op]
            errors = str(s.errors) + (f" (+{s.wrong} wrong)" if s.wrong else "")
            cells += [str(s.count), ms(percentile(s.times, 50)), ms(percentile(s.times, 99))]
            cells += [ms(max(s.times) if s.times else None), errors]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def problems(outcomes: list[Outcome]) -> str:
    """Errors, wrong answers and damaged files, with examples; empty when there are none."""
    out = []
    for o in outcomes:
        items = []
        for what, samples in (("error", o.errors), ("wrong answer", o.wrong)):
            for (op, kind), n in samples.counts.most_common():
                shown = "; ".join(f"`{_tick(m)}`" for m in samples.examples[op, kind][:2])
                items.append(f"{op}, {kind if what == 'error' else what}: {n}x — e.g. {shown}")
        for v in (o.rest, o.bucket):
            if v is None:
                continue
            for kind, entries in (
                ("lost", v.lost),
                ("corrupted", v.corrupted),
                ("unexpected", v.unexpected),
                ("not listed", v.unlisted),
                ("unreadable", v.errors),
                ("untitled left by failed creations", v.orphans),
            ):
                if entries:
                    shown = "; ".join(f"`{_tick(e)}`" for e in entries[:LISTED])
                    more = f" (and {len(entries) - LISTED} more)" if len(entries) > LISTED else ""
                    items.append(f"{kind} ({v.where}): {len(entries)} — {shown}{more}")
        items += [f"harness failure: {h}" for h in o.harness]
        if items:
            out.append(f"`{o.name}`:\n\n" + "\n".join(f"- {i}" for i in items))
    return "\n\n".join(out)


def _tick(text: str) -> str:
    return text.replace("`", "'").replace("\n", " ")[:240]


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), WIDTH, break_on_hyphens=False)


def reading(outcomes: list[Outcome]) -> list[str]:
    """Paragraphs that explain what the figures show."""
    out = []
    names = {o.name: o for o in outcomes}
    new = names.get("new")
    if new is not None and new.statuses.get(412):
        out.append(
            f"The {new.statuses[412]} storage answers 412 in the `new` column are create-only "
            "writes (`If-None-Match: *`) that lost a race for an `UntitledN.ipynb` name in "
            "`load/inbox/` to another client: the manager then tries the next name, as "
            "designed; no request failed because of them."
        )
    if "old" in names:
        out.append(
            "s3contents 0.13's contents methods are synchronous: each one blocks the Jupyter "
            "Server's event loop, so the server handles one request at a time and every "
            "request waits for those queued before it. Its latencies are mostly that wait, "
            "hence about the same for every operation, and its throughput is that of one "
            "request after the other. Being serialised, its creations in `load/inbox/` "
            "never race."
        )
    return out


def section(outcomes: list[Outcome], command: str, date: str, machine: str, delay_ms: float) -> str:
    """The text under the ``## Load`` heading."""
    first = outcomes[0]
    shares = ", ".join(f"{op} {w / sum(WEIGHTS):.0%}" for op, w in zip(OPS, WEIGHTS, strict=True))
    envs = "\n".join(
        f"| `{o.name}` | " + ", ".join(f"{k} {v}" for k, v in o.facts.items()) + " |"
        for o in outcomes
    )
    delay = f"adding {delay_ms:g} ms to each request" if delay_ms else "without added delay"
    paragraphs = [
        f"Generated {date} by `{command}`.",
        f"Machine: {machine}. These figures come from a **shared 2-core machine**, where other "
        "people ran tests at the same time; the clients, the counting proxy, SeaweedFS and the "
        "Jupyter Server share those 2 cores too. Latencies are those of a busy host: compare "
        "the columns rather than reading them as absolute.",
        "**Method.** SeaweedFS (`weed mini`, local disk) is started with the benchmarks' "
        f"helpers, behind the counting proxy of `tests/support/proxy.py` ({delay}). Then one "
        "Jupyter Server per package, one after the other, on a bucket of its own: `new` is "
        "this repository's package, `old` s3contents 0.13.0 from PyPI. Seeded straight into "
        f"the bucket: for each of the {first.clients} clients a folder `load/cNN/` with "
        f"{SEED_NOTEBOOKS} notebooks and {SEED_FILES} text files; a read-only folder "
        f"`load/shared/` of {SHARED_NOTEBOOKS} notebooks; an empty `load/inbox/`. Each client is "
        f"a thread with its own HTTP session that, for {first.duration:g} s, picks operations "
        f"on Jupyter's REST API with these weights: {shares}. **list** lists its own folder "
        "(2/3) or `load/shared/`; **open** reads one of its files (80%, `content=1`) or a "
        "shared notebook; **save** `PUT`s a new version of one of its notebooks (3 to 13 "
        "cells, about 2 to 60 KB) or text files; **new** creates an untitled notebook "
        "(`POST`) in its folder (75%) or in `load/inbox/`, where all clients race for the "
        "same `UntitledN.ipynb` names; **rename** (`PATCH`) gives one of its files a new name "
        "in the same folder.",
        "**Checks.** Every save embeds (client, sequence number) in the notebook's metadata "
        "and in each cell (in a text file's first line), and each client remembers what each "
        "of its files must hold, under its current name. While the load runs, every open and "
        "every listing of its own folder is checked against that (a mismatch is a *wrong "
        "answer*), and so is every creation (a name already handed out would mean a file "
        "replaced). Afterwards every file is checked twice: through the REST API (recursive "
        "listings, every file opened) and straight in the bucket with boto3 (one LIST, every "
        "object read, bypassing Jupyter and the proxy). Each file must exist exactly once "
        "with exactly its last saved content, and no file nobody owns may exist "
        "(checkpoints and folder markers aside). An **error** is any non-2xx answer or "
        f"exception (a request times out after {TIMEOUT:g} s).",
        "**Figures.** Latencies are those of successful requests, measured by the client, "
        "in ms (nearest-rank percentiles). The server's memory is the resident set of its "
        f"process, sampled every {SAMPLE_EVERY * 1000:g} ms from `/proc/PID/status` (VmRSS), "
        "and the kernel's high-water mark VmHWM, reset when the load starts. Storage requests "
        "are counted by the proxy.",
    ]
    # The first paragraph holds the command line: not wrapped, to keep it in one piece.
    parts = [paragraphs[0]] + [_wrap(p) for p in paragraphs[1:]]
    parts += [summary_table(outcomes), ops_table(outcomes)]
    parts.append(
        problems(outcomes) or "No error, no wrong answer, no lost, corrupted or unexpected file."
    )
    parts += [_wrap(p) for p in reading(outcomes)]
    parts.append("| package | environment |\n|---|---|\n" + envs)
    return "_(benchmarks/load)_\n\n" + "\n\n".join(parts) + "\n"


def replace_section(path: Path, body: str) -> None:
    """Put ``body`` under the ``## Load`` heading of ``path``, leaving the rest unchanged.

    The file is read just before it is written: others may edit its other sections.
    """
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == HEADING), None)
    if start is None:
        prefix = text + ("\n" if text and not text.endswith("\n") else "")
        path.write_text(prefix + ("\n" if text else "") + f"{HEADING}\n\n{body}")
        return
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"#{1,2} ", lines[i])), len(lines)
    )
    tail = "".join(lines[end:])
    new = (
        "".join(lines[: start + 1])
        + "\n"
        + body.rstrip("\n")
        + "\n"
        + ("\n" + tail if tail else "")
    )
    path.write_text(new)
