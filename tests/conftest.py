"""Fixtures the suites share: a real broadcaster process (per module or per test), and sockets.

scripts/test.sh runs the tests on 4 pytest-xdist workers (``--dist loadgroup``). So that a test
or fixture stays safe there: ports come from ``tests.servers.free_port`` (each worker has a block
of its own), never a fixed one; files go under ``tmp_path``, never a path another test writes; a
``scope="session"`` fixture is made once per worker; tests that must not run at the same time as
each other (a shared file, a global setting) carry one ``@pytest.mark.xdist_group("name")``;
waits are for an event (``tests.waiting.eventually``), never a fixed time, with deadlines that
allow for a loaded machine; and a test of 10 s or more is marked ``slow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pusher_socket import PusherSocket
from tests.servers import Broadcaster, start_broadcaster


@pytest.fixture(scope="module")
def server() -> Iterator[Broadcaster]:
    """One broadcaster for a whole test module (tests that do not stop or restart it)."""
    broadcaster = start_broadcaster()
    yield broadcaster
    broadcaster.stop()


@pytest.fixture
def broadcaster() -> Iterator[Broadcaster]:
    """A broadcaster of the test's own, which the test may stop and start again."""
    running = start_broadcaster()
    yield running
    running.stop()


@pytest.fixture
def sockets(server: Broadcaster) -> Iterator[Callable[..., PusherSocket]]:
    """Open established sockets on the module's server on demand (keywords go to ``connect``);
    all are closed after the test."""
    opened: list[PusherSocket] = []

    def open_socket(**options: Any) -> PusherSocket:
        opened.append(PusherSocket.to(server, **options))
        return opened[-1]

    yield open_socket
    for socket in opened:
        socket.close()
