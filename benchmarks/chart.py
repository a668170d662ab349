"""The curves as a PNG (``docs/img/benchmarks.png``), drawn with matplotlib (the ``bench``
extra): listing time, folder-rename time and the event loop's longest stall against the
folder's size, a line per target."""

from __future__ import annotations

from pathlib import Path

from .workload import Result

COLOURS = {"new": "tab:blue", "old": "tab:red", "local": "tab:green"}
STALL_GOAL_MS = 50


def _points(results: list[Result], stall: bool = False) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in results:
        value = r.stall if stall else r.median
        if value is not None and not r.error:
            xs.append(r.n)
            ys.append(value * 1000)
    return xs, ys


def write(curves: dict[str, dict[str, list[Result]]], path: Path) -> str:
    """Draw the chart to ``path``; returns why not ("" once written)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart"
    fig, (listing, rename, stall) = plt.subplots(1, 3, figsize=(15, 4.6))
    for name, kinds in curves.items():
        colour = COLOURS.get(name)
        listing.plot(*_points(kinds["list"]), "o-", color=colour, label=name)
        rename.plot(*_points(kinds["rename"]), "o-", color=colour, label=name)
        stall.plot(*_points(kinds["list"], True), "o-", color=colour, label=f"{name}: list")
        stall.plot(*_points(kinds["rename"], True), "s--", color=colour, label=f"{name}: rename")
    stall.axhline(STALL_GOAL_MS, color="grey", linestyle=":", label=f"{STALL_GOAL_MS} ms goal")
    titles = (
        (listing, "List a folder (GET /api/contents/folder)", "notebooks in the folder", "ms"),
        (rename, "Rename a folder (PATCH)", "files in the folder", "ms"),
        (
            stall,
            "Longest event-loop stall during the call",
            "entries (list) / files (rename)",
            "ms",
        ),
    )
    for ax, title, xlabel, ylabel in titles:
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return ""
