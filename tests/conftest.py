"""Fixtures the suites share: a real broadcaster process (per module or per test), and sockets.

scripts/test.sh runs the tests on 4 pytest-xdist workers (``--dist loadgroup``). So that a test
or fixture stays safe there: ports come from ``tests.servers.free_port`` (each worker has a block
of its own), never a fixed one; files go under ``tmp_path``, never a path another test writes; a
``scope="session"`` fixture is made once per worker; tests that must not run at the same time as
each other (a shared file, a global setting) carry one ``@pytest.mark.xdist_group("name")``;
waits are for an event (``tests.waiting.eventually``), never a fixed time, with deadlines that
allow for a loaded machine; and a test of 10 s or more is marked ``slow``.

The ``slow`` tests run first (:func:`pytest_collection_modifyitems`): pytest-xdist hands tests
out in collection order, so the long ones start while the short ones are left to fill the end,
instead of a 35 s test starting last and running alone. They are taken from each folder in turn,
so that browser scenarios (busy cores) run beside webhook and cluster ones (mostly waiting).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pytest

from tests.api.redis_server import redis_server
from tests.pusher_socket import PusherSocket
from tests.redis_cluster import RedisCluster, redis_cluster
from tests.redis_nodes import REDIS_MODES
from tests.redis_sentinel import RedisSentinel, redis_sentinel
from tests.servers import Broadcaster, start_broadcaster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first, one from each folder in turn; then the others in their
    collection order."""
    by_folder: dict[Path, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("slow") is not None:
            by_folder.setdefault(item.path.parent, []).append(item)
    slow = [item for turn in zip_longest(*by_folder.values()) for item in turn if item]
    items[:] = slow + [item for item in items if item.get_closest_marker("slow") is None]


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


# --- Redis in each mode, shared by the whole session ------------------------------------------
# A test that kills a node of a shared setup starts it again (``restart``) before it ends.

@pytest.fixture(scope="session")
def redis_single_url() -> Iterator[str]:
    """One redis-server: its ``redis://`` URL."""
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_cluster_setup() -> Iterator[RedisCluster]:
    """A Redis Cluster of 3 masters and 3 replicas (``tests/redis_cluster.py``)."""
    with redis_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster_setup: RedisCluster) -> str:
    """The session's Redis Cluster as ``redis+cluster://host:port,...``."""
    return redis_cluster_setup.url


@pytest.fixture(scope="session")
def redis_sentinel_setup() -> Iterator[RedisSentinel]:
    """A master, its replica and 3 sentinels (``tests/redis_sentinel.py``)."""
    with redis_sentinel() as setup:
        yield setup


@pytest.fixture(scope="session")
def redis_sentinel_url(redis_sentinel_setup: RedisSentinel) -> str:
    """The session's Sentinel setup as ``redis+sentinel://host:port,.../resound``."""
    return redis_sentinel_setup.url


@pytest.fixture(params=REDIS_MODES)
def redis_mode_url(request: pytest.FixtureRequest) -> str:
    """The URL of each Redis mode in turn (single, cluster, sentinel), for contract suites."""
    return request.getfixturevalue(f"redis_{request.param}_url")
