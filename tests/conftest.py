"""Fixtures the suites share: a real broadcaster process (per module or per test), and sockets."""

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
