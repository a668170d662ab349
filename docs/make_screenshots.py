"""Make the README's screenshots: ``docs/img/filebrowser.png`` and ``docs/img/doctor.png``.

    .venv/bin/python docs/make_screenshots.py [--out docs/img]

Starts SeaweedFS on loopback (``tests/servers.py``), JupyterLab on it through
``S3ContentsManager`` (``tests/browser/browser_support.py``), fills a bucket with a few
notebooks, files and folders through the Jupyter API, and takes, in headless Chromium
(Debian's ``/usr/bin/chromium``, driven by Playwright):

* ``filebrowser.png``: JupyterLab's file browser on the bucket, a notebook open beside it;
* ``doctor.png``: the output of ``s3contents doctor`` against the same server, as text in a
  ``<pre>`` of a plain HTML page.

Everything it starts is stopped (by PID) before it exits.
"""

from __future__ import annotations

import argparse
import html
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "browser"), str(ROOT)]

from browser_support import (  # noqa: E402
    JupyterApp,
    find_chromium,
    launch_chromium,
    start_jupyter,
    wait_for_kernel,
)
from servers import S3Server, start_seaweedfs  # noqa: E402

BUCKET = "notebooks"
PREFIX = "alice"


def notebook(*cells: tuple[str, str]) -> dict[str, Any]:
    """A notebook of code cells (source, printed output)."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            },
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{i}",
                "metadata": {},
                "execution_count": i + 1,
                "source": source,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": output}]
                if output
                else [],
            }
            for i, (source, output) in enumerate(cells)
        ],
    }


def seed(app: JupyterApp) -> None:
    """A few folders, notebooks and files, written through Jupyter (as a user would)."""
    for folder in ("data", "reports", "experiments"):
        app.api(f"/api/contents/{folder}", "PUT", {"type": "directory"})
    files = {
        "README.md": "# Team notebooks\n\nStored in S3 through s3contents.\n",
        "data/measurements.csv": "day,value\n1,3.2\n2,4.1\n3,3.9\n",
        "data/stations.json": '{"stations": ["north", "south"]}\n',
        "reports/summary.md": "# Summary\n",
    }
    for path, text in files.items():
        app.api(f"/api/contents/{path}", "PUT", {"type": "file", "format": "text", "content": text})
    notebooks = {
        "analysis.ipynb": notebook(
            ("import csv\nrows = list(csv.DictReader(open('measurements.csv')))", ""),
            (
                "values = [3.2, 4.1, 3.9]\nprint(f'mean: {sum(values) / len(values):.2f}')",
                "mean: 3.73\n",
            ),
            ("print(6 * 7)", "42\n"),
        ),
        "experiments/baseline.ipynb": notebook(("print('baseline')", "baseline\n")),
        "reports/weekly.ipynb": notebook(("print('week 47')", "week 47\n")),
    }
    for path, content in notebooks.items():
        app.api(
            f"/api/contents/{path}",
            "PUT",
            {"type": "notebook", "format": "json", "content": content},
        )


def doctor_output(server: S3Server) -> str:
    """``s3contents doctor`` against the server, as a user would run it."""
    env = dict(os.environ)
    env.update(
        JPY_S3_ACCESS_KEY_ID=server.access_key_id,
        JPY_S3_SECRET_ACCESS_KEY=server.secret_access_key,
        JUPYTER_CONFIG_DIR=tempfile.mkdtemp(prefix="s3c-doctor-config-"),
    )
    command = [sys.executable, "-m", "s3contents.cli", "doctor"]
    args = ["--bucket", BUCKET, "--prefix", PREFIX, "--endpoint-url", server.endpoint_url]
    result = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"s3contents doctor failed:\n{result.stdout}{result.stderr}")
    # Show the command as typed (the endpoint's port is random).
    return f"$ s3contents doctor {' '.join(args)}\n{result.stdout}"


DOCTOR_PAGE = """<!doctype html>
<meta charset="utf-8">
<style>
  body {{ margin: 0; background: #fff; }}
  pre {{
    display: inline-block; margin: 0; padding: 16px 20px;
    background: #1e1e1e; color: #d4d4d4; border-radius: 6px;
    font: 14px/1.45 "DejaVu Sans Mono", monospace;
  }}
  .ok {{ color: #6cc070; }} .fail {{ color: #f06060; }} .cmd {{ color: #9cdcfe; }}
</style>
<pre>{text}</pre>
"""


def doctor_html(text: str) -> str:
    lines = []
    for line in text.splitlines():
        escaped = html.escape(line)
        if line.startswith("$ "):
            escaped = f'<span class="cmd">{escaped}</span>'
        escaped = escaped.replace("[ ok ]", '[<span class="ok"> ok </span>]')
        escaped = escaped.replace("[FAIL]", '[<span class="fail">FAIL</span>]')
        lines.append(escaped)
    return DOCTOR_PAGE.format(text="\n".join(lines))


def screenshot_filebrowser(browser: Any, app: JupyterApp, out: Path) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 600})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        page.goto(f"{app.url}/lab/tree/analysis.ipynb?reset&token={app.token}")
        page.locator("#filebrowser .jp-DirListing-item").first.wait_for()
        page.locator(".jp-NotebookPanel .jp-OutputArea-output").last.wait_for()
        wait_for_kernel(page)
        # Opening may touch the notebook's metadata (the kernel's language_info): save it so
        # the tab is not marked as modified.
        page.keyboard.press("Control+s")
        page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").wait_for()
        # Select a file, as a user browsing would, and leave the notebook's cell unfocused.
        page.locator("#filebrowser .jp-DirListing-item", has_text="analysis.ipynb").click()
        page.mouse.move(0, 0)
        page.screenshot(path=str(out))
    finally:
        context.close()


def screenshot_doctor(browser: Any, text: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 400}, device_scale_factor=1)
    try:
        page.set_content(doctor_html(text))
        page.locator("pre").screenshot(path=str(out))
    finally:
        page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium at /usr/bin/chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with start_seaweedfs() as server:
        server.make_bucket(BUCKET)
        app = start_jupyter(
            "lab",
            endpoint_url=server.endpoint_url,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
            bucket=BUCKET,
            prefix=PREFIX,
        )
        try:
            seed(app)
            text = doctor_output(server)
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright, chromium)
                try:
                    screenshot_filebrowser(browser, app, args.out / "filebrowser.png")
                    screenshot_doctor(browser, text, args.out / "doctor.png")
                finally:
                    browser.close()
        finally:
            app.stop()
    for name in ("filebrowser.png", "doctor.png"):
        path = args.out / name
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{path.stat().st_size // 1024} KB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
