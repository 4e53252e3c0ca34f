"""A throwaway redis-server on a free loopback port, with persistence off
(``RESOUND_TEST_REDIS_SERVER`` names another binary, e.g. ``valkey-server``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.redis_nodes import SERVER
from tests.servers import HOST, free_port


@contextmanager
def redis_server(port: int | None = None, timeout: float = 10.0) -> Iterator[str]:
    """Run redis-server (on ``port`` or a free one); yield its URL."""
    port = port or free_port()
    proc = subprocess.Popen(
        [SERVER, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://{HOST}:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
