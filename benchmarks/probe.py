"""How long the Jupyter Server's event loop is held: a client polling ``/api/status``."""

from __future__ import annotations

import contextlib
import threading
import time

import requests


class StallProbe:
    """Polls ``GET /api/status`` back to back on a connection of its own while an operation
    runs, and keeps the longest single wait: how long the server's event loop was held."""

    def __init__(self, base_url: str, token: str) -> None:
        self.url = base_url.rstrip("/") + "/api/status"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"token {token}"
        self.longest = 0.0
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            with contextlib.suppress(requests.RequestException):
                self.http.get(self.url, timeout=600)
            self.longest = max(self.longest, time.perf_counter() - start)
            self.polls += 1

    def __enter__(self) -> StallProbe:
        self.longest, self.polls = 0.0, 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(600)
