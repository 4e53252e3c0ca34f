"""Start and stop the servers under test with one app, and read their CPU time and RSS.

Both servers get the same app (id 123456, key app-key, secret app-secret, client events on) and
a fresh process for every measurement, so one scenario's leftovers never count in the next.

The cluster setups (``CLUSTER_LAUNCHERS``) start Resound as one or more nodes, or with
``--workers``, on a throwaway redis-server of their own (loopback, persistence off), started
and stopped with them; the setups "on Redis Cluster" on a throwaway Redis Cluster instead (3
masters and 3 replicas, ``tests/redis_cluster.py``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from tests.api.redis_server import redis_server
from tests.certificates import Certificates
from tests.redis_cluster import redis_cluster
from tests.servers import HOST, free_port, wait_for_http

from .scenarios import (
    HISTORY_ON,
    HISTORY_REDIS,
    METRICS_ON,
    NO_RULE,
    PLAIN_ON,
    PLAIN_REDIS,
    RULE_SET,
    SINGLE,
    WEBHOOKS_ON,
)

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
OCCUPANCY_WEBHOOKS = ("channel_occupied", "channel_vacated", "member_added", "member_removed")
SCRAPE_INTERVAL = 1.0  # seconds between two scrapes of /metrics (Prometheus' default is 15 s)
# The history setups' rule (the apps file's "history", as RESOUND_APP_HISTORY gives it to the
# default app): channels named hist-* keep their last 100 events for an hour.
HISTORY_RULES = [{"channels": "hist-*", "limit": 100, "ttl": 3600}]

log = logging.getLogger("bench")


@dataclass
class RunningServer:
    """Server processes (``pids``, one per node) on ``ports``; the figures sum every node and
    its child processes (``--workers``). ``redis_pids``: the redis-server processes they share
    (one, or every node of a Redis Cluster), whose CPU is read apart (``redis_cpu_seconds``)."""

    name: str
    ports: list[int]
    pids: list[int]
    redis_pids: list[int] = field(default_factory=list)
    sink: WebhookSink | None = None  # where the app's webhooks go, when it has any
    ca: Path | None = None  # with TLS (wss, https): the CA that signed its certificate
    redis_url: str | None = None  # the shared Redis's (REDIS_URL), if any

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting the server's CA, with TLS; None without."""
        return None if self.ca is None else ssl.create_default_context(cafile=str(self.ca))

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def pid(self) -> int:
        return self.pids[0]

    @property
    def ws_urls(self) -> list[str]:
        scheme = "ws" if self.ca is None else "wss"
        return [f"{scheme}://{HOST}:{port}/app/{APP_KEY}?protocol=7&client=js&version=8.4.0"
                for port in self.ports]

    @property
    def ws_url(self) -> str:
        return self.ws_urls[0]

    @property
    def http_url(self) -> str:
        return f"{'http' if self.ca is None else 'https'}://{HOST}:{self.port}"

    def _processes(self) -> list[psutil.Process]:
        roots = [psutil.Process(pid) for pid in self.pids]
        return [process for root in roots for process in (root, *root.children(recursive=True))]

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far of every server process, from /proc."""
        return sum(self.node_cpu_seconds())

    def node_cpu_seconds(self) -> list[float]:
        """User plus system CPU time so far of each node (with its child processes), in the
        order of ``pids``."""
        def spent(pid: int) -> float:
            root = psutil.Process(pid)
            return sum(sum(p.cpu_times()[:2]) for p in (root, *root.children(recursive=True)))
        return [spent(pid) for pid in self.pids]

    def redis_cpu_seconds(self) -> float | None:
        """The shared redis-server processes' user plus system CPU time so far (summed over a
        Redis Cluster's nodes); None without one."""
        if not self.redis_pids:
            return None
        return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in self.redis_pids)

    def rss_bytes(self) -> int:
        return sum(p.memory_info().rss for p in self._processes())


def _apps_file(log_dir: Path, **settings: Any) -> Path:
    """The bench app, with the presence limit lifted, and ``settings`` added."""
    apps_file = log_dir / "resound-apps.json"
    apps_file.write_text(json.dumps({"apps": [{
        "id": APP_ID, "key": APP_KEY, "secret": APP_SECRET,
        "accept_client_events_from": "members", "max_presence_members": PRESENCE_MEMBERS,
        **settings,
    }]}))
    return apps_file


@contextmanager
def resound(log_dir: Path, command: list[str] | None = None, *, nodes: int = 1,
            workers: int = 1, scaling: bool = False, metrics: bool = False,
            webhooks: tuple[str, ...] = (), app: dict[str, Any] | None = None,
            metrics_port: int | None = None, tls: Certificates | None = None,
            cwd: Path | None = None, redis: str = "single") -> Iterator[RunningServer]:
    """``python -m broadcaster start`` (or ``command start``) on a free port; an apps file lifts
    the presence limit.

    ``nodes`` processes on ports of their own and ``workers`` per node need ``scaling``: then
    they share a fresh redis-server (``REVERB_SCALING_ENABLED``), or with ``redis="cluster"`` a
    fresh Redis Cluster of 3 masters and 3 replicas (``redis+cluster://``). With ``metrics``,
    each node serves /metrics on a port of its own, scraped every :data:`SCRAPE_INTERVAL`
    meanwhile (``metrics_port``: one node's, not scraped here). With ``webhooks`` (event types),
    the app's webhooks of those types go to a :class:`WebhookSink` of the run's, answering 200;
    ``app``: more settings for the apps file; ``tls``: wss and https with these certificates.
    ``cwd``: where the nodes run (a checkout of another commit there shadows the installed
    packages)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("REVERB_")}
    with ExitStack() as stack:
        settings, sink = dict(app or {}), None
        if webhooks:
            sink = stack.enter_context(webhook_sink(log_dir))
            settings["webhooks"] = [{"url": sink.url, "event_types": list(webhooks)}]
        env["REVERB_APPS_FILE"] = str(_apps_file(log_dir, **settings))
        redis_pids: list[int] = []
        redis_url = None
        if tls is not None:
            env.update(RESOUND_TLS_CERT=str(tls.cert), RESOUND_TLS_KEY=str(tls.key))
        if scaling:
            env["REVERB_SCALING_ENABLED"] = "true"
            redis_url, redis_pids = _shared_redis(stack, redis)
            env["REDIS_URL"] = redis_url
        elif nodes > 1 or workers > 1:
            raise ValueError("several nodes or workers need scaling=True (a shared Redis)")
        ports, pids = [], []
        for _ in range(nodes):
            extra = ["--workers", str(workers)] if workers > 1 else []
            scraped = free_port() if metrics else None
            if scraped is not None or metrics_port is not None:
                extra += ["--metrics-port", str(scraped or metrics_port)]
            port = free_port()
            log_path = log_dir / "resound.log"
            log_from = log_path.stat().st_size if log_path.exists() else 0
            with open(log_path, "ab") as log_file:
                proc = subprocess.Popen(
                    [*(command or [sys.executable, "-m", "broadcaster"]),
                     "start", "--host", HOST, "--port", str(port), *extra],
                    env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd)
            stack.callback(_stop, proc.pid)
            if tls is None:
                wait_for_http(f"http://{HOST}:{port}/up", proc=proc)
            else:
                _wait_for_port(port, proc)
            if workers > 1:  # /up answers once one worker serves; the parent logs when all do
                _wait_for_log(log_path, log_from, "listening on", proc)
            if scraped is not None:  # stops before the server: every scrape must succeed
                stack.enter_context(_scraping(scraped))
            log.debug("resound is pid %d on port %d", proc.pid, port)
            ports.append(port)
            pids.append(proc.pid)
        yield RunningServer("resound", ports, pids, redis_pids, sink,
                            None if tls is None else tls.ca, redis_url)


@dataclass
class WebhookSink:
    """A webhook receiver (``bench/sink.py``) in a process of its own, answering 200."""

    url: str
    path: Path  # the events it received, a JSON line each

    @property
    def events(self) -> list[tuple[float, dict[str, Any]]]:
        """Each event received so far, with its arrival time (``time.monotonic()``)."""
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        return [(found["at"], found["event"]) for found in map(json.loads, lines)]


@contextmanager
def webhook_sink(log_dir: Path) -> Iterator[WebhookSink]:
    port, path = free_port(), log_dir / f"webhooks-{time.time_ns()}.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink", str(port), str(path)])
    try:
        sink = WebhookSink(f"http://{HOST}:{port}/webhooks", path)
        _wait_for_port(port, proc)
        yield sink
    finally:
        proc.terminate()
        proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port}")


@contextmanager
def _scraping(port: int) -> Iterator[None]:
    """Scrape ``http://127.0.0.1:port/metrics`` every SCRAPE_INTERVAL from a thread, as
    Prometheus would (more often), while inside the ``with``; log the scrapes that failed."""
    stop = threading.Event()
    failures: list[str] = []

    def scrape() -> None:
        while not stop.wait(SCRAPE_INTERVAL):
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as answer:
                    answer.read()
            except OSError as exc:
                failures.append(str(exc))

    thread = threading.Thread(target=scrape, name="metrics-scraper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if failures:
            log.warning("%d scrape(s) of port %d failed, first: %s", len(failures), port,
                        failures[0])


def _shared_redis(stack: ExitStack, mode: str) -> tuple[str, list[int]]:
    """A throwaway Redis of ``mode`` (``single`` or ``cluster``), stopped when ``stack`` closes:
    its ``REDIS_URL`` and its redis-server processes."""
    if mode == "cluster":
        cluster = stack.enter_context(redis_cluster())
        return cluster.url, [node.proc.pid for node in cluster.nodes if node.proc is not None]
    if mode != "single":
        raise ValueError(f"unknown Redis mode {mode!r}; choose single or cluster")
    url = stack.enter_context(redis_server())
    pid = _redis_pid(url)
    return url, [] if pid is None else [pid]


def _redis_pid(url: str) -> int | None:
    """Our own redis-server child serving ``url`` (redis://host:port/db)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    for child in psutil.Process().children():
        try:
            cmdline = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        # redis-server retitles itself "redis-server 127.0.0.1:PORT"
        if "redis-server" in " ".join(cmdline) and f":{port}" in " ".join(cmdline):
            return child.pid
    return None


def _wait_for_log(path: Path, offset: int, text: str, proc: subprocess.Popen,
                  timeout: float = 60.0) -> None:
    """Wait until ``text`` appears in the log at ``path`` past ``offset``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as log_file:
            log_file.seek(offset)
            if text.encode() in log_file.read():
                return
        if proc.poll() is not None:
            raise RuntimeError(f"resound exited with {proc.returncode} before logging {text!r}")
        time.sleep(0.05)
    raise TimeoutError(f"resound did not log {text!r} within {timeout} s (see {path})")


@contextmanager
def soketi(log_dir: Path, tls: Certificates | None = None) -> Iterator[RunningServer]:
    """soketi 1.6.1 through the team's soketi.sh, in the benchmark's own install directory;
    ``tls``: wss and https with these certificates."""
    port = free_port()
    env = dict(os.environ, SOKETI_DIR=SOKETI_DIR,
               SOKETI_PRESENCE_MAX_MEMBERS=str(PRESENCE_MEMBERS),
               SOKETI_SHUTDOWN_GRACE_PERIOD="200")  # ms; its default 3 s only slows the rounds
    if tls is not None:
        env.update(SOKETI_SSL_CERT=str(tls.cert), SOKETI_SSL_KEY=str(tls.key))
    started = subprocess.run(["bash", str(SOKETI_SCRIPT), "start", str(port)], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
    pid = int(started.stdout.split()[-1])
    if started.stderr.strip() and tls is None:  # e.g. not on its native uWebSockets build
        log.warning("soketi.sh: %s", started.stderr.strip())  # (it checks over plain http)
    try:
        if tls is None:
            wait_for_http(f"http://{HOST}:{port}/ready")
        else:
            _wait_for_port(port)
        log.debug("soketi is pid %d on port %d", pid, port)
        yield RunningServer("soketi", [port], [pid], ca=None if tls is None else tls.ca)
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


Launcher = Callable[..., AbstractContextManager[RunningServer]]

LAUNCHERS: dict[str, Launcher] = {"resound": resound, "soketi": soketi}

# The setups on a shared Redis: each on one redis-server ("... on Redis") and on a Redis Cluster
# ("... on Redis Cluster").
_ON_REDIS: dict[str, dict[str, int]] = {
    "1 node on Redis": {}, "3 nodes on Redis": {"nodes": 3}, "--workers 2 on Redis": {"workers": 2},
}

# The cluster setups, each Resound (its launcher takes ``command`` as ``resound`` does).
CLUSTER_LAUNCHERS: dict[str, Launcher] = {
    SINGLE: resound,
    **{name + suffix: partial(resound, scaling=True, redis=mode, **shape)
       for name, shape in _ON_REDIS.items()
       for suffix, mode in (("", "single"), (" Cluster", "cluster"))},
    METRICS_ON: partial(resound, metrics=True),
    WEBHOOKS_ON: partial(resound, webhooks=OCCUPANCY_WEBHOOKS),
    # The history scenarios: both channels on one setup with the rule; the rule against none.
    **dict.fromkeys((HISTORY_ON, PLAIN_ON, RULE_SET),
                    partial(resound, app={"history": HISTORY_RULES})),
    NO_RULE: resound,
    **dict.fromkeys((HISTORY_REDIS, PLAIN_REDIS),
                    partial(resound, nodes=2, scaling=True, app={"history": HISTORY_RULES})),
}
