"""A three-node cluster for the end-to-end tests: real broadcaster processes on one real
redis-server, which a test may stop and start again on the same port, and nodes it may kill,
freeze or replace. Helpers read every node's HTTP API, so a test can require the same answer
from all of them."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.redis_modes import parse_redis_url, sync_client
from tests.api.redis_server import redis_server
from tests.api.wire import post_json, signed_request
from tests.pusher_socket import PusherSocket, member
from tests.sdk import sdk_for
from tests.servers import Broadcaster, free_port, start_broadcaster
from tests.waiting import eventually

SIZE = 3
SETTLE = 15.0  # seconds allowed for counts (flushed every 0.25 s) and rosters to converge


class Cluster:
    """``SIZE`` broadcasters sharing the redis-server on ``redis_port``, with ``extra_env``; or,
    given ``url``, a Redis of any mode that the caller runs (a Cluster, a Sentinel setup)."""

    def __init__(self, extra_env: dict[str, str] | None = None, url: str = "") -> None:
        self.redis_port = free_port()
        self.url = url
        self.external = bool(url)
        self.extra_env = dict(extra_env or {})
        self.nodes: list[Broadcaster] = []
        self._redis: contextlib.ExitStack | None = None
        self._sockets: list[tuple[Broadcaster, PusherSocket]] = []

    # --- processes -------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start an empty redis-server on the cluster's port (nothing for an external one)."""
        if self.external:
            return
        stack = contextlib.ExitStack()
        self.url = stack.enter_context(redis_server(self.redis_port))
        self._redis = stack

    def stop_redis(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    @property
    def env(self) -> dict[str, str]:
        return {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": self.url, **self.extra_env}

    def start_node(self) -> Broadcaster:
        """One more node (a new process on a new port), appended to ``nodes``."""
        self.nodes.append(start_broadcaster(self.env))
        return self.nodes[-1]

    def kill(self, node: Broadcaster) -> None:
        """``kill -9`` the node; it stays in ``nodes`` until :meth:`heal` replaces it."""
        node.kill()

    def freeze(self, node: Broadcaster) -> None:
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGSTOP)

    def thaw(self, node: Broadcaster) -> None:
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGCONT)

    def heal(self) -> None:
        """Restart Redis if it is down and every node that is not running: after a test that
        broke something, the next one finds a whole cluster."""
        for node in self.nodes:
            if node.proc is not None:
                self.thaw(node)
        if self._redis is None:
            self.start_redis()
        for index, node in enumerate(self.nodes):
            if node.proc is None or node.proc.poll() is not None:
                node.stop()
                self.nodes[index] = start_broadcaster(self.env)
        for node in self.nodes:  # a node back from an outage accepts once resubscribed
            eventually(lambda node=node: self.accepts(node), SETTLE,
                       f"the node on port {node.port} accepting triggers")
        eventually(lambda: self.registered() == len(self.nodes), SETTLE,
                   "every node registered in Redis (again, after Redis lost its data)")

    def registered(self) -> int:
        """How many node incarnations Redis holds as alive (a node's heartbeat registers it)."""
        client = sync_client(parse_redis_url(self.url))
        try:
            return client.zcount("resound:nodes", "(0", "+inf")
        finally:
            client.close()

    @staticmethod
    def accepts(node: Broadcaster) -> bool:
        """Whether ``node`` accepts a trigger now (an unused channel: nobody gets it)."""
        status, _ = post_json(node, f"/apps/{node.app_id}/events",
                              {"name": "probe", "channel": "cluster-probe", "data": "{}"})
        return status == 200

    def stop(self) -> None:
        self.close_sockets()
        for node in self.nodes:
            if node.proc is not None:
                self.thaw(node)
            node.stop()
        self.stop_redis()

    # --- sockets ---------------------------------------------------------------------------

    def socket(self, node: Broadcaster) -> PusherSocket:
        """An established socket on ``node``, closed after the test."""
        self._sockets.append((node, PusherSocket.to(node)))
        return self._sockets[-1][1]

    def member_on(self, node: Broadcaster, channel: str, user: str) -> PusherSocket:
        """A socket on ``node`` joined to presence ``channel`` as ``user``."""
        socket = self.socket(node)
        socket.joined(channel, member(user))
        return socket

    def close_sockets(self) -> None:
        for node, socket in self._sockets:
            if node.proc is None:  # killed: no close handshake to wait 2 s for
                socket.ws.socket.close()
            else:
                with contextlib.suppress(Exception):
                    socket.close()
        self._sockets = []

    # --- the HTTP API on every node --------------------------------------------------------

    @property
    def live(self) -> list[Broadcaster]:
        return [node for node in self.nodes if node.proc is not None]

    def get(self, node: Broadcaster, path: str, **params: str) -> tuple[int, Any]:
        return signed_request(node, "GET", f"/apps/{node.app_id}{path}", params=params or None)

    def agreed(self, read: Callable[[Broadcaster], Any], expected: Any, what: str) -> None:
        """Wait until ``read(node)`` gives ``expected`` on every live node (counts are flushed
        every 0.25 s); then require it once more from every node, read after the wait."""
        eventually(lambda: all(read(node) == expected for node in self.live), SETTLE,
                   f"every node giving {what} = {expected!r}")
        assert [read(node) for node in self.live] == [expected] * len(self.live), what

    def users(self, node: Broadcaster, channel: str) -> set[str] | None:
        """``GET channels/{channel}/users`` on ``node`` as a set of ids (None unless 200)."""
        status, answer = self.get(node, f"/channels/{channel}/users")
        return {user["id"] for user in answer["users"]} if status == 200 else None

    def roster_agreed(self, channel: str, users: set[str]) -> None:
        """Every node's API lists ``users`` as ``channel``'s members, with that user_count."""
        self.agreed(lambda node: self.users(node, channel), users, f"users of {channel}")
        self.agreed(lambda node: self.get(node, f"/channels/{channel}", info="user_count"),
                    (200, {"occupied": bool(users), "user_count": len(users)}),
                    f"{channel} user_count")

    def connections_agreed(self, count: int) -> None:
        self.agreed(lambda node: self.get(node, "/connections"), (200, {"connections": count}),
                    "connections")

    def trigger(self, node: Broadcaster, channel: str, event: str, data: str = "{}") -> None:
        sdk_for(node).trigger(channel, event, data)


def unique(prefix: str) -> str:
    """A channel name of the test's own, so tests sharing a cluster never meet."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def running_cluster(extra_env: dict[str, str] | None = None, url: str = "") -> Iterator[Cluster]:
    cluster = Cluster(extra_env, url)
    try:
        cluster.start_redis()
        for _ in range(SIZE):
            cluster.start_node()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def module_cluster() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def cluster(module_cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster, whole again (Redis and every node up) after each test."""
    yield module_cluster
    module_cluster.close_sockets()
    module_cluster.heal()

