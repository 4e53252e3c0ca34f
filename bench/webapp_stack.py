"""The webapp's production stack for the webapp benchmarks, on loopback ports.

A database (a fresh SQLite file, or a fresh database on a PostgreSQL server the caller names,
dropped afterwards), the broadcaster, the web app under gunicorn, the outbox worker, and an admin
subscribed to ``private-admin.orders`` whose every event is timed as it is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed

from tests.pusher_socket import PusherSocket
from tests.servers import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    HOST,
    WEBAPP_SECRET_KEY,
    Broadcaster,
    free_port,
    start_broadcaster,
    terminate,
    wait_for_http,
)

ADMIN_CHANNEL = "private-admin.orders"


@contextmanager
def database(url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh database's URL: a new SQLite file in ``workdir`` without ``url``, else a new
    database on the PostgreSQL server of ``url`` (which must allow CREATE DATABASE)."""
    if not url:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    name = f"resound_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def webapp_env(database_url: str, broadcaster_port: int,
               extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the web processes and the worker."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url, "SECRET_KEY": WEBAPP_SECRET_KEY,
        "REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY, "REVERB_APP_SECRET": APP_SECRET,
        "REVERB_HOST": HOST, "REVERB_PORT": str(broadcaster_port), "REVERB_SCHEME": "http",
        "OUTBOX_IDLE_SECONDS": "0.1", "OUTBOX_BACKOFF_INITIAL": "0.1",
        "OUTBOX_BACKOFF_MAX": "1.0", "FLASK_SKIP_DOTENV": "1",
    })
    env.update(extra or {})
    return env


def flask(env: Mapping[str, str], *args: str, log: Path | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """``flask --app webapp ARGS`` as its own process (its output in ``log``), with the webapp
    of the checkout ``cwd`` (default: this one)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "webapp", *args],
                            env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


def seed(env: Mapping[str, str], cwd: Path | None = None) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "seed"], env=dict(env),
                   check=True, stdout=subprocess.DEVNULL, cwd=cwd)


def _no_control_socket() -> list[str]:
    """Recent gunicorns listen on ~/.gunicorn/gunicorn.ctl, one path for every instance on the
    machine: switched off where the option exists."""
    usage = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True,
                           text=True).stdout
    return ["--no-control-socket"] if "--no-control-socket" in usage else []


THREADS = 4  # gunicorn threads per worker, as the Procfile runs it


@contextmanager
def gunicorn(env: Mapping[str, str], workers: int, log: Path,
             cwd: Path | None = None) -> Iterator[str]:
    """The web app under gunicorn as the Procfile runs it; its base URL (see
    :func:`gunicorn_process`)."""
    with gunicorn_process(env, workers, log, cwd) as (base_url, _proc):
        yield base_url


@contextmanager
def gunicorn_process(env: Mapping[str, str], workers: int, log: Path,
                     cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """The web app of the checkout ``cwd`` (default: this one) under gunicorn as the Procfile
    runs it: ``workers`` gthread workers of :data:`THREADS` threads; its base URL and the
    master process."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers),
             "--worker-class", "gthread", "--threads", str(THREADS),
             "--bind", f"{HOST}:{port}", *_no_control_socket(), "webapp:create_app()"],
            env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        wait_for_http(f"http://{HOST}:{port}/login", timeout=30, proc=proc)
        yield f"http://{HOST}:{port}", proc
    finally:
        stop(proc)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` and its children so far (0 once gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


ACCEPT_WAIT_SECONDS = 2.0  # longest wait for gunicorn's workers to accept the bench's sockets


def connections_per_worker(master_pid: int, port: int, expected: int) -> list[int]:
    """How many of the ``expected`` connections open to ``port`` each worker of the gunicorn
    ``master_pid`` holds, most first (a connection stays with the worker that accepted it, so
    this says which processes serve a run). Waits until the workers have accepted them all (at
    most :data:`ACCEPT_WAIT_SECONDS`)."""
    deadline = time.monotonic() + ACCEPT_WAIT_SECONDS
    while True:
        counts = []
        for worker in psutil.Process(master_pid).children():
            try:
                counts.append(sum(1 for c in worker.net_connections(kind="tcp")
                                  if c.status == psutil.CONN_ESTABLISHED
                                  and c.laddr.port == port))
            except psutil.NoSuchProcess:
                continue
        if sum(counts) >= expected or time.monotonic() > deadline:
            return sorted(counts, reverse=True)
        time.sleep(0.01)


def stop(proc: subprocess.Popen) -> None:
    terminate(proc, timeout=15.0)


@contextmanager
def broadcaster(log: Path) -> Iterator[Broadcaster]:
    with open(log, "ab") as out:
        running = start_broadcaster(stderr=out)
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Frame:
    """One event the admin read: when (``time.perf_counter``), its name and its data."""

    at: float
    name: str
    data: dict


@dataclass
class AdminSubscriber:
    """A socket on ``private-admin.orders`` (signed as the webapp's auth endpoint signs) and a
    thread that reads it, timing each event; ``frames`` in arrival order."""

    server: Broadcaster
    frames: list[Frame] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.socket = PusherSocket.to(self.server)
        self.socket.joined(ADMIN_CHANNEL)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="admin-subscriber", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.socket.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            at = time.perf_counter()
            message = json.loads(raw)
            if message["event"] == "pusher:ping":
                self.socket.send({"event": "pusher:pong", "data": {}})
            elif message.get("channel") == ADMIN_CHANNEL:
                with self.arrived:
                    self.frames.append(Frame(at, message["event"], json.loads(message["data"])))
                    self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether ``count`` events arrived within ``timeout`` s."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.frames) >= count, timeout)

    def close(self) -> None:
        self._stop.set()
        self._reader.join(5)
        self.socket.close()
