"""``broadcaster start --workers N``: N worker processes share one port, each a node on a real
redis-server. The kernel spreads sockets over the workers, an event reaches sockets on all of
them, SIGTERM drains every worker with 4200, and a killed worker is replaced.

Worker processes are found from outside, as the parent's children that listen on the port
(psutil), so the protocol needs no debug endpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from broadcaster.config import ConfigError, load_config
from tests.api.redis_server import redis_server
from tests.pusher_socket import PusherSocket
from tests.sdk import sdk_for
from tests.servers import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    HOST,
    Broadcaster,
    free_port,
    start_broadcaster,
)
from tests.waiting import eventually

SOCKETS = 20  # enough that all landing on one of two workers would be a 1 in 500,000 fluke
CREDENTIALS = {"REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY,
               "REVERB_APP_SECRET": APP_SECRET}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def workers(redis_url: str) -> Iterator[Broadcaster]:
    """A broadcaster with two workers, scaling through the module's Redis."""
    server = start_broadcaster({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": redis_url},
                               args=["--workers", "2"])
    yield server
    server.stop()


def worker_processes(server: Broadcaster) -> list[psutil.Process]:
    """The parent's children that listen on its port (not multiprocessing's helper process)."""
    assert server.proc is not None
    return [child for child in psutil.Process(server.proc.pid).children()
            if _connections(child, server.port, psutil.CONN_LISTEN)]


def _connections(process: psutil.Process, port: int, status: str) -> int:
    try:
        connections = process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return 0
    return sum(1 for c in connections if c.status == status and c.laddr.port == port)


def established(process: psutil.Process, port: int) -> int:
    """How many connections to ``port`` ``process`` holds open."""
    return _connections(process, port, psutil.CONN_ESTABLISHED)


def open_spread(server: Broadcaster, processes: list[psutil.Process],
                **options: object) -> list[PusherSocket]:
    """``SOCKETS`` sockets, asserted to be held by the ``processes`` together, each some.

    ``/up`` answers once one worker serves; a socket the kernel gives a worker still starting
    waits in its queue, hence the long ``open_timeout``.
    """
    options.setdefault("open_timeout", 30)
    sockets = [PusherSocket.to(server, **options) for _ in range(SOCKETS)]
    eventually(lambda: sum(established(p, server.port) for p in processes) == SOCKETS,
               what=f"the workers holding all {SOCKETS} sockets")
    held = [established(process, server.port) for process in processes]
    assert all(held), f"the kernel gave one worker every socket: {held}"
    return sockets


def test_sockets_spread_over_the_workers_and_a_trigger_reaches_them_all(workers):
    processes = worker_processes(workers)
    assert len(processes) == 2
    sockets = open_spread(workers, processes)
    try:
        for socket in sockets:
            socket.joined("workers-news")
        sdk_for(workers).trigger("workers-news", "spread", {"n": 1})
        events = [socket.next_event() for socket in sockets]
        assert [event and event["event"] for event in events] == ["spread"] * SOCKETS
    finally:
        for socket in sockets:
            socket.close()


def test_sigterm_closes_every_socket_on_every_worker_with_4200_and_exits_0(workers):
    processes = worker_processes(workers)
    sockets = open_spread(workers, processes)
    assert workers.proc is not None
    workers.proc.send_signal(signal.SIGTERM)
    assert [socket.closed_code() for socket in sockets] == [4200] * SOCKETS
    assert workers.proc.wait(timeout=30) == 0
    eventually(lambda: not any(process.is_running() for process in processes),
               what="every worker exiting")


def test_a_killed_worker_is_replaced_and_the_new_one_serves(workers):
    victim, survivor = worker_processes(workers)
    for socket in open_spread(workers, [victim, survivor]):  # both serve: start-up is over
        socket.close()
    victim.kill()
    eventually(lambda: {p.pid for p in worker_processes(workers)} - {victim.pid, survivor.pid},
               timeout=30, what="a new worker")
    processes = worker_processes(workers)
    assert survivor in processes and victim not in processes
    for socket in open_spread(workers, processes):
        socket.close()


def start_without_server(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broadcaster", "start", "--host", HOST,
         "--port", str(free_port()), *args],
        env=env, capture_output=True, text=True, timeout=30,
    )


def test_workers_without_scaling_stop_start_up_with_one_line():
    env = {name: value for name, value in os.environ.items()
           if name not in ("REVERB_SCALING_ENABLED", "RESOUND_WORKERS")}
    result = start_without_server({**env, **CREDENTIALS}, "--workers", "2")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "REVERB_SCALING_ENABLED" in result.stderr and "REDIS_URL" in result.stderr


@pytest.mark.parametrize(("env", "workers", "error"), [
    ({"RESOUND_WORKERS": "0"}, None, "RESOUND_WORKERS must be at least 1"),
    ({"RESOUND_WORKERS": "two"}, None, "RESOUND_WORKERS must be a number"),
    ({}, 0, "--workers must be at least 1"),
    ({"RESOUND_WORKERS": "3"}, None, "3 workers need REVERB_SCALING_ENABLED"),
])
def test_bad_worker_counts_are_configuration_errors(env, workers, error):
    with pytest.raises(ConfigError, match=error):
        load_config({**CREDENTIALS, **env}, workers=workers)


def test_the_worker_count_comes_from_the_cli_over_the_environment():
    scaled = {**CREDENTIALS, "REVERB_SCALING_ENABLED": "true", "RESOUND_WORKERS": "3"}
    assert load_config(CREDENTIALS).workers == 1
    assert load_config(scaled).workers == 3
    assert load_config(scaled, workers=2).workers == 2
