"""Several Jupyter servers on one bucket and prefix, and how to look at what they did.

:class:`Writers` starts Jupyter servers (``python -m jupyterlab``, through
:func:`jupyter_procs.start_jupyter`) that share a bucket and prefix, each behind a
:class:`~tests.support.proxy.StorageProxy` of its own, and can SIGKILL and restart any of
them. The bucket is read directly with boto3 (:meth:`Writers.snapshot`), never through the
servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.support.jupyter_procs import JupyterApp, start_jupyter
from tests.support.proxy import StorageProxy
from tests.support.servers import S3Server

__all__ = ["CLAIM", "Writers", "api_path", "claims_in", "run_at_once"]

#: Claims of folder renames (s3contents.folders): never left behind by a finished rename.
CLAIM = ".s3contents-rename"


def api_path(path: str) -> str:
    return "/api/contents/" + quote(path)


@dataclass
class Writers:
    """Jupyter servers sharing ``bucket`` and ``prefix`` on ``server``."""

    server: S3Server
    bucket: str
    prefix: str
    #: Settings every Jupyter server gets (``--S3ContentsManager.x=y``).
    #: A lease long enough for a loaded 2-core machine (renewed every third of it), short
    #: enough for the tests that wait for a killed server's lease to run out.
    settings: dict[str, str] = field(default_factory=lambda: {"rename_lease": "8"})
    apps: list[JupyterApp] = field(default_factory=list)
    proxies: list[StorageProxy] = field(default_factory=list)

    def start(self, count: int) -> None:
        for _ in range(count):
            proxy = StorageProxy(self.server.endpoint_url)
            proxy.__enter__()
            self.proxies.append(proxy)
            self.apps.append(self._launch(proxy))

    def _launch(self, proxy: StorageProxy) -> JupyterApp:
        return start_jupyter(
            "lab",
            endpoint_url=proxy.url,
            access_key_id=self.server.access_key_id,
            secret_access_key=self.server.secret_access_key,
            bucket=self.bucket,
            prefix=self.prefix,
            extra_args=[f"--S3ContentsManager.{k}={v}" for k, v in self.settings.items()]
            + [f"--S3ContentsManager.region_name={self.server.region_name}"],
        )

    def restart(self, index: int) -> JupyterApp:
        """Stop server ``index`` if it still runs and start a new one in its place."""
        self.apps[index].stop()
        self.proxies[index].clear_rules()
        self.apps[index] = self._launch(self.proxies[index])
        return self.apps[index]

    def kill_on(self, index: int, **rule: Any) -> threading.Event:
        """SIGKILL Jupyter server ``index`` just as the first request matching ``rule``
        (see :class:`tests.support.proxy.Rule`, ``when`` included) reaches its proxy; the event
        is set once it is dead."""
        done = threading.Event()
        app = self.apps[index]

        def kill() -> None:
            app.kill()
            done.set()

        self.proxies[index].on(action=kill, **rule)
        return done

    def stop(self) -> None:
        for app in self.apps:
            app.stop()
        for proxy in self.proxies:
            proxy.__exit__(None, None, None)
        self.apps.clear()
        self.proxies.clear()

    # -- the bucket, directly ---------------------------------------------------------------
    def key(self, path: str) -> str:
        return f"{self.prefix}/{path}"

    def seed(self, folder: str, count: int, size: int = 64) -> dict[str, bytes]:
        """``count`` files ``folder/fNNNN.txt`` with distinct contents; {path: content}."""
        files = {
            f"{folder}/f{i:04d}.txt": f"{folder} {i} ".encode().ljust(size, b".")
            for i in range(count)
        }
        client = self.server.client(max_pool_connections=16)
        try:
            with ThreadPoolExecutor(16) as pool:
                list(
                    pool.map(
                        lambda item: client.put_object(
                            Bucket=self.bucket, Key=self.key(item[0]), Body=item[1]
                        ),
                        files.items(),
                    )
                )
        finally:
            client.close()
        return files

    def snapshot(self, folder: str = "") -> dict[str, bytes]:
        """{path under the prefix: content} of every object under ``folder``."""
        client = self.server.client(max_pool_connections=16)
        root = f"{self.prefix}/" + (f"{folder}/" if folder else "")
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root
            )
            keys = [o["Key"] for page in pages for o in page.get("Contents", ())]
            keys = [k for k in keys if not k.endswith("/")]
            with ThreadPoolExecutor(16) as pool:
                bodies = list(
                    pool.map(
                        lambda k: client.get_object(Bucket=self.bucket, Key=k)["Body"].read(),
                        keys,
                    )
                )
        finally:
            client.close()
        return {k[len(self.prefix) + 1 :]: b for k, b in zip(keys, bodies, strict=True)}

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)


def run_at_once(calls: Iterable[Callable[[], Any]], offsets: Iterable[float]) -> list[Any]:
    """Run ``calls`` in threads, each starting ``offset`` seconds after a common start."""
    calls, offsets = list(calls), list(offsets)
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any], offset: float) -> Any:
        barrier.wait()
        if offset:
            time.sleep(offset)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(run, c, o) for c, o in zip(calls, offsets, strict=True)]
        return [f.result() for f in futures]


def claims_in(snapshot: dict[str, bytes]) -> list[str]:
    return [p for p in snapshot if p.endswith("/" + CLAIM)]
