"""Start real server processes on free loopback ports for the tests.

Every suite (broadcaster, HTTP API, webapp, real clients) uses these, so a server is started the
same way everywhere: as its own process, the way the Procfile starts it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

HOST = "127.0.0.1"
APP_ID = "123456"
APP_KEY = "test-key"
APP_SECRET = "test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered {url} within {timeout} s")


@dataclass
class Broadcaster:
    """A running ``python -m broadcaster start`` process."""

    port: int
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    app_id: str = APP_ID
    key: str = APP_KEY
    secret: str = APP_SECRET

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/app/{self.key}?protocol=7&client=js&version=8.4.0"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Broadcaster:
        cmd = [sys.executable, "-m", "broadcaster", "start", "--host", HOST,
               "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env)
        wait_for_http(f"{self.http_url}/up", proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_broadcaster(
    extra_env: Mapping[str, str] | None = None, args: list[str] | None = None,
    port: int | None = None,
) -> Broadcaster:
    """Start a broadcaster with the test app (``APP_ID``/``APP_KEY``/``APP_SECRET``)."""
    env = dict(os.environ)
    env.update({
        "REVERB_APP_ID": APP_ID,
        "REVERB_APP_KEY": APP_KEY,
        "REVERB_APP_SECRET": APP_SECRET,
    })
    env.update(extra_env or {})
    return Broadcaster(port=port or free_port(), env=env, args=list(args or [])).start()
