"""Start and stop the servers under test with one app, and read their CPU time and RSS.

Both servers get the same app (id 123456, key app-key, secret app-secret, client events on) and
a fresh process for every measurement, so one scenario's leftovers never count in the next.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.servers import HOST, free_port, wait_for_http

APP_ID = "123456"
APP_KEY = "app-key"
APP_SECRET = "app-secret"
PRESENCE_MEMBERS = 1000  # both servers default to 100 members per presence channel
# The team's soketi.sh lives in the shared/ folder beside the checkout (not the shared package).
SOKETI_SCRIPT = Path(os.environ.get(
    "SOKETI_SH", Path(__file__).resolve().parents[2] / "shared" / "tools" / "soketi.sh"
))
SOKETI_DIR = os.environ.get("BENCH_SOKETI_DIR", "/tmp/resound-bench-soketi")
SERVERS = ("resound", "soketi")

log = logging.getLogger("bench")


@dataclass
class RunningServer:
    """A server process on ``port``; its figures include any child processes."""

    name: str
    port: int
    pid: int

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/app/{APP_KEY}?protocol=7&client=js&version=8.4.0"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far, from /proc."""
        return sum(sum(p.cpu_times()[:2]) for p in self._processes())

    def rss_bytes(self) -> int:
        return sum(p.memory_info().rss for p in self._processes())


@contextmanager
def resound(log_dir: Path, command: list[str] | None = None) -> Iterator[RunningServer]:
    """``python -m broadcaster start`` (or ``command start``) on a free port; an apps file lifts
    the presence limit."""
    apps_file = log_dir / "resound-apps.json"
    apps_file.write_text(json.dumps({"apps": [{
        "id": APP_ID, "key": APP_KEY, "secret": APP_SECRET,
        "accept_client_events_from": "members", "max_presence_members": PRESENCE_MEMBERS,
    }]}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("REVERB_")}
    env["REVERB_APPS_FILE"] = str(apps_file)
    port = free_port()
    with open(log_dir / "resound.log", "ab") as log_file:
        proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "broadcaster"]),
             "start", "--host", HOST, "--port", str(port)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://{HOST}:{port}/up", proc=proc)
        log.debug("resound is pid %d on port %d", proc.pid, port)
        yield RunningServer("resound", port, proc.pid)
    finally:
        _stop(proc.pid)


@contextmanager
def soketi(log_dir: Path) -> Iterator[RunningServer]:
    """soketi 1.6.1 through the team's soketi.sh, in the benchmark's own install directory."""
    port = free_port()
    env = dict(os.environ, SOKETI_DIR=SOKETI_DIR,
               SOKETI_PRESENCE_MAX_MEMBERS=str(PRESENCE_MEMBERS),
               SOKETI_SHUTDOWN_GRACE_PERIOD="200")  # ms; its default 3 s only slows the rounds
    started = subprocess.run(["bash", str(SOKETI_SCRIPT), "start", str(port)], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
    pid = int(started.stdout.split()[-1])
    if started.stderr.strip():  # e.g. not on its native uWebSockets build: numbers would be off
        log.warning("soketi.sh: %s", started.stderr.strip())
    try:
        wait_for_http(f"http://{HOST}:{port}/ready")
        log.debug("soketi is pid %d on port %d", pid, port)
        yield RunningServer("soketi", port, pid)
    finally:
        _stop(pid)


def _stop(pid: int) -> None:
    log.debug("stopping pid %d", pid)
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass


LAUNCHERS = {"resound": resound, "soketi": soketi}
