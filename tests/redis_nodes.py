"""One redis-server process on a free loopback port, which a test may kill (SIGKILL) and start
again with the same arguments: the building block of the Cluster and Sentinel fixtures.

``RESOUND_TEST_REDIS_SERVER`` names the server binary (``redis-server`` by default;
``valkey-server`` runs the same tests against Valkey).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from tests.servers import HOST, free_port, terminate

REDIS_MODES = ("single", "cluster", "sentinel")  # the redis_mode_url fixture's parameters
SERVER = os.environ.get("RESOUND_TEST_REDIS_SERVER", "redis-server")
START_TIMEOUT = 10.0  # seconds for a started server to answer PING


class RedisNode:
    """A redis-server (or sentinel) in ``folder``, persistence off, logging to a file there."""

    def __init__(self, folder: Path, *arguments: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.arguments = arguments
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def start(self, *extra: str, config: Path | None = None) -> None:
        """Start the server (from ``config`` if given: sentinels need a file they may rewrite),
        with ``extra`` arguments after the node's own, and wait until it answers PING."""
        command = [SERVER, *([str(config)] if config else []), "--port", str(self.port),
                   "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                   "--logfile", str(self.log), *self.arguments, *extra]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=self.folder)
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{SERVER} on port {self.port} did not start: "
                                           f"{self.log_tail()}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def client(self, db: int = 0) -> redis.Redis:
        """A plain client of this one process (decoded answers); close it after use."""
        return redis.Redis(host=HOST, port=self.port, db=db, decode_responses=True,
                           socket_connect_timeout=1, socket_timeout=5)

    def call(self, *command: str) -> object:
        """One command on this process, on a connection of its own."""
        with self.client() as client:
            return client.execute_command(*command)

    def info(self, section: str) -> dict:
        with self.client() as client:
            return client.info(section)

    def kill(self) -> None:
        """``kill -9``: the process dies at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        terminate(self.proc)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Setup(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Setup)


@contextmanager
def running(make: Callable[[Path], S], name: str) -> Iterator[S]:
    """``make(folder)`` started in a temporary folder of its own; stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix=f"resound-{name}-"))
    setup = make(folder)
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()
        shutil.rmtree(folder, ignore_errors=True)
