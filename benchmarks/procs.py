"""Stopping the processes the benchmark started: by their own PID, politely first."""

from __future__ import annotations

import contextlib
import subprocess


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM ``proc``, wait up to ``grace`` seconds, then SIGKILL it; idempotent."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(grace)
