"""One contract for both twins of ClusterState: LocalState (one process) and RedisState (a
real redis-server). Nodes hold real AppState objects with recording clients subscribed; member
events are collected from ``publish`` (local) or from the Redis bus channel (redis). Dead
nodes, a Redis that loses its data, and races between nodes are Redis-only."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from broadcaster.cluster.base import ClusterState
from broadcaster.cluster.local import LocalState
from broadcaster.cluster.redis_bus import RedisBus
from broadcaster.cluster.redis_state import RedisState, member_removed
from broadcaster.config import AppConfig
from broadcaster.protocol.publication import WATCHLIST, Publication
from broadcaster.protocol.requests import (
    ChannelCounts,
    Full,
    Joined,
    JoinPresence,
    LeavePresence,
    Left,
    SignIn,
    SignOut,
    Watched,
)
from broadcaster.protocol.state import AppState
from broadcaster.protocol.watchlist import status_publication
from shared.payloads import dumps, loads
from shared.redis_modes import parse_redis_url, sync_client
from tests.broadcaster.recording import RecordingClient
from tests.cluster.buses import into
from tests.conftest import REDIS_MODES

APP = "1"
ROOM = "presence-room"
FAST = {"heartbeat_interval": 0.1, "node_ttl": 0.5, "reap_interval": 0.2, "flush_interval": 0.05}


@dataclass
class Node:
    state: ClusterState
    app: AppState
    bus: RedisBus | None = None
    delivered: list[Publication] = field(default_factory=list)  # by the Redis bus

    def subscribe(self, channel: str, socket_id: str) -> RecordingClient:
        """A socket on this node, connected and subscribed to ``channel``."""
        client = RecordingClient(socket_id)
        self.app.add_connection(client)
        self.app.open_channel(channel).subscribe(client)
        return client

    async def stop(self) -> None:
        await self.state.stop()
        if self.bus is not None:
            await self.bus.stop()


@dataclass
class Twin:
    """One backend: makes nodes of it, and collects the member events they publish."""

    kind: str
    url: str | None
    published: list[Publication] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)

    async def node(self, node_id: str = "a", **timings: float) -> Node:
        app = AppState(AppConfig(id=APP, key="key", secret="secret"))
        if self.url is None:
            state: ClusterState = LocalState(node_id)
            state.attach({APP: app}, self.published.append)
            node = Node(state, app)
        else:
            bus = RedisBus(self.url, "contract")
            app.routes = bus.routes(APP)  # as the server wires it
            state = RedisState(self.url, node_id, bus, **timings)
            state.attach({APP: app}, bus.publish)
            node = Node(state, app, bus)
            bus.attach(into(node.delivered))
            await bus.start()
        await node.state.start()
        self.nodes.append(node)
        return node

    def events(self) -> list[tuple[str, str]]:
        """The member events published so far, as (event, user id)."""
        return [(p.event.removeprefix("pusher_internal:"), loads(p.data)["user_id"])
                for p in self.published]


async def settles(ask: Callable[[], Any], expected: Any, what: str,
                  timeout: float = 10.0) -> None:
    """Ask (a function, sync or async) until it answers ``expected``; fail after ``timeout``
    naming ``what`` and the last answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = ask()
        if inspect.isawaitable(got):
            got = await got
        if got == expected:
            return
        assert asyncio.get_running_loop().time() < deadline, (
            f"{what}: still {got!r} after {timeout} s, expected {expected!r}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def observed(twin: Twin) -> AsyncIterator[None]:
    """Collect the publications on ROOM and the app's own stream (watchlist events) into
    ``twin.published`` meanwhile."""
    if twin.url is None:
        yield
        return
    observer = RedisBus(twin.url, "contract")
    observer.routes(APP)
    observer.hold(APP, ROOM)
    observer.attach(into(twin.published))
    await observer.start()
    try:
        yield
    finally:
        await observer.stop()


def emptied(url: str) -> str:
    """``url`` after emptying its Redis (every master of a cluster)."""
    client = sync_client(parse_redis_url(url))
    client.flushall()
    client.close()
    return url


@pytest.fixture(params=["local", *REDIS_MODES])
def twin(request) -> Twin:
    """Every twin: the local one, and the Redis one on each Redis mode."""
    if request.param == "local":
        return Twin("local", None)
    return Twin(request.param, emptied(request.getfixturevalue(f"redis_{request.param}_url")))


def run(twin: Twin, scenario: Callable[[], Awaitable[None]]) -> None:
    async def with_cleanup() -> None:
        async with observed(twin):
            try:
                await scenario()
            finally:
                for node in twin.nodes:
                    await node.stop()

    asyncio.run(with_cleanup())


def join(socket_id: str, user_id: str, channel: str = ROOM, cap: int = 100) -> JoinPresence:
    info = {"name": user_id.title()}
    added = Publication(APP, (channel,), "pusher_internal:member_added",
                        dumps({"user_id": user_id, "user_info": info}), socket_id)
    return JoinPresence(APP, channel, socket_id, user_id, info, cap, added)


def leave(socket_id: str, user_id: str, channel: str = ROOM) -> LeavePresence:
    return LeavePresence(APP, channel, socket_id, user_id, member_removed(APP, channel, user_id))


def info(*users: str) -> dict[str, Any]:
    return {user: {"name": user.title()} for user in users}


# --- both twins ----------------------------------------------------------------------------


def test_first_socket_joins_and_last_socket_leaves(twin):
    async def scenario():
        node = await twin.node()
        assert await node.state.join_presence(join("1.1", "ann")) == Joined(True, info("ann"))
        assert await node.state.join_presence(join("1.2", "bob")) == Joined(
            True, info("ann", "bob"))
        assert await node.state.members(APP, ROOM) == info("ann", "bob")
        assert await node.state.leave_presence(leave("1.1", "ann")) == Left(True)
        assert await node.state.members(APP, ROOM) == info("bob")
        await settles(twin.events, [("member_added", "ann"), ("member_added", "bob"),
                                        ("member_removed", "ann")], "member events")

    run(twin, scenario)


def test_many_tabs_are_one_member(twin):
    async def scenario():
        node = await twin.node()
        for n, first in ((1, True), (2, False), (3, False)):
            assert await node.state.join_presence(join(f"1.{n}", "ann")) == Joined(
                first, info("ann"))
        assert await node.state.leave_presence(leave("1.1", "ann")) == Left(False)
        assert await node.state.leave_presence(leave("1.1", "ann")) == Left(False)  # again
        assert await node.state.leave_presence(leave("1.2", "ann")) == Left(False)
        assert await node.state.members(APP, ROOM) == info("ann")
        assert await node.state.leave_presence(leave("1.3", "ann")) == Left(True)
        assert await node.state.members(APP, ROOM) == {}
        await settles(twin.events, [("member_added", "ann"), ("member_removed", "ann")],
                      "member events")

    run(twin, scenario)


def test_a_full_channel_refuses_new_users_but_not_new_tabs(twin):
    async def scenario():
        node = await twin.node()
        assert isinstance(await node.state.join_presence(join("1.1", "ann", cap=2)), Joined)
        assert isinstance(await node.state.join_presence(join("1.2", "bob", cap=2)), Joined)
        assert await node.state.join_presence(join("1.3", "cid", cap=2)) == Full(2)
        assert await node.state.join_presence(join("1.4", "ann", cap=2)) == Joined(
            False, info("ann", "bob"))
        assert await node.state.members(APP, ROOM) == info("ann", "bob")
        assert await node.state.leave_presence(leave("1.2", "bob")) == Left(True)
        await settles(twin.events, [("member_added", "ann"), ("member_added", "bob"),
                                    ("member_removed", "bob")], "member events")

    run(twin, scenario)


def test_counts_cover_subscriptions_users_and_connections(twin):
    async def scenario():
        node = await twin.node()
        for socket_id in ("1.1", "1.2"):
            node.subscribe("news", socket_id)
            node.subscribe(ROOM, socket_id)
        node.subscribe("#server-to-user-ann", "1.1")
        await node.state.join_presence(join("1.1", "ann"))
        await node.state.join_presence(join("1.2", "ann"))
        assert await node.state.connection_count(APP) == 2
        assert await node.state.channel_counts(APP) == {
            "news": ChannelCounts(2), ROOM: ChannelCounts(2, 1)}
        assert await node.state.channel_counts(APP, ("news", "empty", "presence-none")) == {
            "news": ChannelCounts(2), "empty": ChannelCounts(0),
            "presence-none": ChannelCounts(0, 0)}

    run(twin, scenario)


# --- Redis only: several nodes on one Redis --------------------------------------------------


@pytest.fixture
def cluster(redis_mode_url) -> Twin:
    """Several nodes on one Redis, of each mode (one server, Cluster, Sentinel)."""
    return Twin("redis", emptied(redis_mode_url))


def counts(node: Node) -> Callable[[], Awaitable[Any]]:
    async def ask() -> Any:
        return (await node.state.connection_count(APP), await node.state.channel_counts(APP))
    return ask


def test_counts_and_rosters_are_the_same_on_every_node(cluster):
    async def scenario():
        one, two = await cluster.node("one", **FAST), await cluster.node("two", **FAST)
        one.subscribe("news", "1.1")
        one.subscribe(ROOM, "1.1")
        closing = two.subscribe("news", "2.1")
        two.subscribe(ROOM, "2.2")
        assert await one.state.join_presence(join("1.1", "ann")) == Joined(True, info("ann"))
        assert await two.state.join_presence(join("2.2", "ann")) == Joined(False, info("ann"))
        for node in (one, two):
            expected = (3, {"news": ChannelCounts(2), ROOM: ChannelCounts(2, 1)})
            await settles(counts(node), expected, f"counts on {node.state.node_id}")
            assert await node.state.members(APP, ROOM) == info("ann")
        two.app.remove_connection(closing)
        news = two.app.channels["news"]
        news.leave(closing.socket_id)
        two.app.drop_if_empty(news)
        await settles(counts(one), (2, {"news": ChannelCounts(1), ROOM: ChannelCounts(2, 1)}),
                      "counts after a socket closed on the other node")
        assert await one.state.leave_presence(leave("1.1", "ann")) == Left(False)
        assert await two.state.leave_presence(leave("2.2", "ann")) == Left(True)
        await settles(cluster.events, [("member_added", "ann"), ("member_removed", "ann")],
                      "member events")

    run(cluster, scenario)


def test_a_dead_node_is_reaped_and_its_last_sockets_announced(cluster):
    async def scenario():
        alive, dead = await cluster.node("alive", **FAST), await cluster.node("dead", **FAST)
        alive.subscribe(ROOM, "1.1")
        for socket_id, channel in (("2.1", ROOM), ("2.1", "news"), ("2.2", ROOM)):
            dead.subscribe(channel, socket_id)
        await alive.state.join_presence(join("1.1", "ann"))
        await dead.state.join_presence(join("2.1", "ann"))
        await dead.state.join_presence(join("2.2", "bob"))
        await settles(counts(alive), (3, {"news": ChannelCounts(1), ROOM: ChannelCounts(3, 2)}),
                      "the other node's counts, before it dies")
        await dead.state.halt()  # no more heartbeats, as after kill -9
        await settles(lambda: alive.state.members(APP, ROOM), info("ann"), "the roster")
        await settles(counts(alive), (1, {ROOM: ChannelCounts(1, 1)}), "counts")
        assert await alive.state.leave_presence(leave("1.1", "ann")) == Left(True)
        await settles(cluster.events, [("member_added", "ann"), ("member_added", "bob"),
                                       ("member_removed", "bob"), ("member_removed", "ann")],
                      "member events")

    run(cluster, scenario)


def test_a_node_reaped_while_frozen_re_registers_its_sockets(cluster):
    async def scenario():
        frozen = await cluster.node("frozen", **FAST)
        reaper = await cluster.node("reaper", **FAST)
        frozen.subscribe(ROOM, "1.1")
        await frozen.state.join_presence(join("1.1", "ann"))
        await frozen.state.halt()  # SIGSTOP
        await settles(cluster.events, [("member_added", "ann"), ("member_removed", "ann")],
                      "the frozen node's member removed")
        assert await reaper.state.members(APP, ROOM) == {}
        await frozen.state.heartbeat()  # SIGCONT: the first thing it does is its heartbeat
        await settles(cluster.events, [("member_added", "ann"), ("member_removed", "ann"),
                                       ("member_added", "ann")], "ann added back")
        assert await reaper.state.members(APP, ROOM) == info("ann")
        await settles(counts(reaper), (1, {ROOM: ChannelCounts(1, 1)}), "counts")
        assert await frozen.state.leave_presence(leave("1.1", "ann")) == Left(True)
        assert await reaper.state.members(APP, ROOM) == {}

    run(cluster, scenario)


def test_counts_and_rosters_come_back_after_redis_loses_its_data(cluster):
    async def scenario():
        one, two = await cluster.node("one", **FAST), await cluster.node("two", **FAST)
        one.subscribe(ROOM, "1.1")
        two.subscribe(ROOM, "2.1")
        two.subscribe("news", "2.1")
        await one.state.join_presence(join("1.1", "ann"))
        await two.state.join_presence(join("2.1", "bob"))
        expected = (2, {"news": ChannelCounts(1), ROOM: ChannelCounts(2, 2)})
        await settles(counts(one), expected, "counts before the flush")
        emptied(cluster.url)
        await settles(counts(one), expected, "counts after the flush")
        await settles(lambda: two.state.members(APP, ROOM), info("ann", "bob"), "the roster")
        assert await one.state.leave_presence(leave("1.1", "ann")) == Left(True)
        assert await two.state.members(APP, ROOM) == info("bob")

    run(cluster, scenario)


def test_the_same_user_joining_on_two_nodes_at_once_is_added_once(cluster):
    async def scenario():
        one, two = await cluster.node("one"), await cluster.node("two")
        for round in range(100):
            user = f"u{round}"
            answers = await asyncio.gather(one.state.join_presence(join("1.1", user)),
                                           two.state.join_presence(join("2.1", user)))
            assert sorted(answer.first for answer in answers) == [False, True]
            assert all(answer.members == info(user) for answer in answers)
            await one.state.leave_presence(leave("1.1", user))
            await two.state.leave_presence(leave("2.1", user))
        expected = [(event, f"u{n}") for n in range(100)
                    for event in ("member_added", "member_removed")]
        await settles(cluster.events, expected, "one added and one removed per round")

    run(cluster, scenario)


def test_a_join_answer_comes_after_the_events_of_its_roster_and_before_later_ones(cluster):
    """Node one hears a channel only from its join on (interest routing): a member_added
    delivered before the answer is in its roster, one delivered after it is not, and roster
    plus later events make every member: none missed, none twice."""
    async def scenario():
        one, two = await cluster.node("one"), await cluster.node("two")

        def added(channel: str, publications: list[Publication]) -> set[str]:
            return {loads(p.data)["user_id"] for p in publications if p.channels == (channel,)}

        async def join_on_one(channel: str) -> tuple[Any, int]:
            """The answer, and how many publications node one had delivered when it came."""
            answered: asyncio.Future[tuple[Any, int]] = asyncio.Future()

            def reply(answer: Any) -> None:
                one.subscribe(channel, "1.1")  # as the session does: the node holds it now
                answered.set_result((answer, len(one.delivered)))

            one.state.submit(join("1.1", "ann", channel), reply)
            return await answered

        for round in range(100):
            channel = f"presence-order-{round}"
            (answer, at), *_ = await asyncio.gather(join_on_one(channel), *(
                two.state.join_presence(join(f"2.{n}", f"u{n}", channel)) for n in range(3)))
            roster = set(answer.members)
            assert added(channel, one.delivered[:at]) <= roster
            everyone = {"ann", "u0", "u1", "u2"}
            await settles(lambda roster=roster, channel=channel, at=at:
                          roster | added(channel, one.delivered[at:]), everyone,
                          "the roster and the events after it")
            assert not added(channel, one.delivered[at:]) & roster

    run(cluster, scenario)


def test_the_same_users_last_two_sockets_leaving_at_once_are_removed_once(cluster):
    async def scenario():
        one, two = await cluster.node("one"), await cluster.node("two")
        for round in range(100):
            user = f"u{round}"
            await one.state.join_presence(join("1.1", user))
            await two.state.join_presence(join("2.1", user))
            answers = await asyncio.gather(one.state.leave_presence(leave("1.1", user)),
                                           two.state.leave_presence(leave("2.1", user)))
            assert sorted(answer.last for answer in answers) == [False, True]
        expected = [(event, f"u{n}") for n in range(100)
                    for event in ("member_added", "member_removed")]
        await settles(cluster.events, expected, "one added and one removed per round")

    run(cluster, scenario)


def test_ten_users_on_three_nodes_fill_a_channel_capped_at_five(cluster):
    async def scenario():
        nodes = [await cluster.node(name) for name in ("one", "two", "three")]
        for round in range(100):
            channel = f"presence-capped-{round}"
            answers = await asyncio.gather(*(
                nodes[n % 3].state.join_presence(join(f"{n}.1", f"u{n}", channel, cap=5))
                for n in range(10)))
            joined = {f"u{n}" for n, answer in enumerate(answers) if isinstance(answer, Joined)}
            assert len(joined) == 5
            assert all(answer == Full(5) for answer in answers if not isinstance(answer, Joined))
            assert set(await nodes[0].state.members(APP, channel)) == joined

    run(cluster, scenario)


# --- the online roster behind watchlist events (both twins, then several nodes) -------------


def sign_in(socket_id: str, user_id: str, *watchlist: str) -> SignIn:
    return SignIn(APP, socket_id, user_id, watchlist, status_publication(APP, user_id, True))


def sign_out(socket_id: str, user_id: str) -> SignOut:
    return SignOut(APP, socket_id, user_id, status_publication(APP, user_id, False))


def online_changes(twin: Twin) -> list[tuple[str, str]]:
    """The online/offline publications so far, as (name, user id)."""
    return [(event["name"], user_id)
            for publication in twin.published if publication.kind == WATCHLIST
            for event in loads(publication.data)["events"] for user_id in event["user_ids"]]


def not_watchlist(twin: Twin) -> list[Publication]:
    return [publication for publication in twin.published if publication.kind != WATCHLIST]


def test_first_and_last_sockets_decide_online_and_offline(twin):
    async def scenario():
        node = await twin.node()
        assert await node.state.sign_in(sign_in("1.1", "ann", "bob")) == Watched(())
        assert await node.state.sign_in(sign_in("1.2", "ann")) == Watched(())
        assert await node.state.sign_in(sign_in("1.3", "bob", "ann", "cy", "bob")) == Watched(
            ("ann", "bob"))
        assert await node.state.sign_out(sign_out("1.1", "ann")) == Left(False)
        assert await node.state.sign_out(sign_out("1.1", "ann")) == Left(False)  # again
        assert await node.state.sign_out(sign_out("1.2", "ann")) == Left(True)
        assert await node.state.sign_in(sign_in("1.4", "cy", "ann", "bob")) == Watched(("bob",))
        await settles(lambda: online_changes(twin), [("online", "ann"), ("online", "bob"),
                                              ("offline", "ann"), ("online", "cy")], "changes")
        assert not_watchlist(twin) == []

    run(twin, scenario)


def test_a_user_online_on_two_nodes_goes_offline_once_and_a_dead_nodes_users_go(cluster):
    async def scenario():
        one, two = await cluster.node("one", **FAST), await cluster.node("two", **FAST)
        assert await one.state.sign_in(sign_in("1.1", "ann")) == Watched(())
        assert await two.state.sign_in(sign_in("2.1", "ann", "ann")) == Watched(("ann",))
        assert await two.state.sign_in(sign_in("2.2", "bob", "ann")) == Watched(("ann",))
        assert await one.state.sign_out(sign_out("1.1", "ann")) == Left(False)
        await two.state.halt()  # no more heartbeats, as after kill -9
        await settles(lambda: online_changes(cluster), [("online", "ann"), ("online", "bob"),
                                                 ("offline", "ann"), ("offline", "bob")],
                      "changes after the node with ann's last socket died")
        assert await one.state.sign_in(sign_in("1.2", "cy", "ann", "bob")) == Watched(())

    run(cluster, scenario)
