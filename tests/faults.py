"""Fault injection for the reliability tests: a SeaweedFS that can be killed and restarted
on the same data, behind a proxy that can kill it, or slow it down, at a chosen request.

* :class:`RestartableSeaweedFS`: ``weed mini`` on a data directory of its own, with fixed
  credentials; :meth:`~RestartableSeaweedFS.kill` sends SIGKILL (no clean shutdown, as when
  a machine or container dies), :meth:`~RestartableSeaweedFS.restart` starts it again on
  the same data. The new process listens on new ports: the proxy in front hides that.
* :class:`FaultProxy`: the recording proxy of ``tests/recording_proxy.py`` with rules: the
  first request matching a rule (``fault.on(method="PUT", key_contains="x")``) runs the
  rule's action before it is forwarded, and may be held back for ``delay`` seconds. The
  contents manager's ``endpoint_url`` points at the proxy, which forwards to the server's
  current port.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.recording_proxy import RecordingProxy, _Head, _parse_target
from tests.support.servers import S3Server, start_seaweedfs

__all__ = ["FaultProxy", "RestartableSeaweedFS", "Rule"]


class RestartableSeaweedFS:
    """A SeaweedFS whose process can be killed and started again on the same data."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="s3c-faults-"))
        self.access_key_id = f"s3c{secrets.token_hex(8)}"
        self.secret_access_key = secrets.token_urlsafe(30)
        self.server: S3Server | None = None
        self.kills = 0
        self.restarts: list[float] = []  # seconds each restart took

    def start(self) -> S3Server:
        self.server = start_seaweedfs(
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            data_dir=self.data_dir,
        )
        return self.server

    @property
    def alive(self) -> bool:
        return self.server is not None and self.server.is_running()

    def kill(self) -> None:
        """SIGKILL the server process (by the PID we started) and wait for it."""
        server, self.server = self.server, None
        if server is None:
            return
        if server.process is not None:
            server.process.kill()
            server.process.wait(10)
        server.stop()  # closes its log and client; the data directory is ours, kept
        self.kills += 1

    def restart(self) -> S3Server:
        began = time.monotonic()
        server = self.start()
        self.restarts.append(time.monotonic() - began)
        return server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Rule:
    """Act on the first request (after ``skip`` matching ones) that matches."""

    method: str | None = None
    key_contains: str | None = None
    query_has: str | None = None
    skip: int = 0
    action: Callable[[], None] | None = None
    delay: float = 0.0
    times: int = 1
    fired: int = 0

    def matches(self, method: str, key: str, query: dict[str, str]) -> bool:
        if self.fired >= self.times:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.key_contains is not None and self.key_contains not in key:
            return False
        if self.query_has is not None and self.query_has not in query:
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True


class FaultProxy(RecordingProxy):
    """A recording proxy that can kill or slow down the server at a chosen request."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._rules: list[Rule] = []
        self._rules_lock = threading.Lock()

    def retarget(self, upstream_url: str) -> None:
        """Forward new connections to ``upstream_url`` (a restarted server's new port)."""
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)

    def on(self, **rule: object) -> Rule:
        """Add a :class:`Rule` (keyword arguments are its fields); returns it."""
        made = Rule(**rule)  # type: ignore[arg-type]
        with self._rules_lock:
            self._rules.append(made)
        return made

    def clear_rules(self) -> None:
        with self._rules_lock:
            self._rules.clear()

    async def _exchange(
        self,
        req: _Head,
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        u_reader: asyncio.StreamReader,
        u_writer: asyncio.StreamWriter,
    ) -> bool:
        method = req.start[0].upper()
        _, key, query = _parse_target(req.start[1])
        with self._rules_lock:
            fired = [r for r in self._rules if r.matches(method, key, query)]
            for r in fired:
                r.fired += 1
        for r in fired:
            if r.action is not None:
                # Runs on the proxy's thread: the request waits for it, as if the server
                # died just as it arrived.
                await asyncio.get_running_loop().run_in_executor(None, r.action)
            if r.delay:
                await asyncio.sleep(r.delay)
        return await super()._exchange(req, c_reader, c_writer, u_reader, u_writer)
