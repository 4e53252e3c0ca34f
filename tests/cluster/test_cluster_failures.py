"""The three-node cluster through failures: a node killed or frozen, Redis stopped or restarted
empty. After each, the state converges: no ghost member, the same counts on every node, and no
event lost or doubled. The fixture restarts whatever a test broke."""

from __future__ import annotations

import json
import time

import pytest

from tests.api.wire import post_json
from tests.cluster.conftest import SETTLE, unique
from tests.cluster.test_cluster import member_events, roster
from tests.pusher_socket import PusherSocket, error, member
from tests.servers import Broadcaster, Webapp, start_webapp, start_worker
from tests.waiting import eventually
from tests.webapp.conftest import ADMIN, ALICE
from tests.webapp.test_integration import (
    ALICE_CHANNEL,
    http_authorizer,
    outbox_state,
    subscribed,
    token_of,
    transition,
)

pytestmark = pytest.mark.slow

CRASH_DEADLINE = 40.0  # a dead node's members leave within 30 s (TTL 10 s, reaper every 5 s)


def removed_users(observer: PusherSocket, channel: str, count: int,
                  timeout: float = CRASH_DEADLINE) -> list[str]:
    """The users in the next ``count`` member_removed events ``observer`` gets on ``channel``."""
    deadline = time.monotonic() + timeout
    users: list[str] = []
    while len(users) < count:
        message = observer.next_message(
            max(deadline - time.monotonic(), 0.01),
            lambda m: m.get("channel") == channel)
        assert message is not None, f"only {len(users)} of {count} member_removed arrived"
        assert message["event"] == "pusher_internal:member_removed", message
        users.append(json.loads(message["data"])["user_id"])
    return users


def test_a_killed_nodes_members_are_removed_everywhere_and_leave_no_ghost(cluster):
    channel = unique("presence-crash-")
    one, two, doomed = cluster.nodes
    observers = [cluster.member_on(one, channel, "obs1"), cluster.member_on(two, channel, "obs2")]
    victims = [f"victim{i}" for i in range(50)]
    for user in victims:
        cluster.member_on(doomed, channel, user)
    added = [("member_added", user) for user in victims]
    assert member_events(observers, one, channel) == [[("member_added", "obs2"), *added], added]
    cluster.roster_agreed(channel, {"obs1", "obs2", *victims})

    cluster.kill(doomed)
    for observer in observers:
        assert sorted(removed_users(observer, channel, 50)) == sorted(victims)
    assert member_events(observers, two, channel) == [[], []]  # each removed once only
    cluster.roster_agreed(channel, {"obs1", "obs2"})
    cluster.connections_agreed(2)


def trigger(node: Broadcaster, channel: str, event: str) -> tuple[int, dict]:
    return post_json(node, f"/apps/{node.app_id}/events",
                     {"name": event, "channel": channel, "data": "{}"})


def trigger_until_accepted(node: Broadcaster, channel: str, event: str) -> None:
    """POST as the webapp's outbox does: again after a 503, until accepted."""
    eventually(lambda: trigger(node, channel, event)[0] == 200, SETTLE,
               f"{event} accepted by the node on port {node.port}")


def test_redis_down_triggers_get_503_presence_an_error_then_all_works_again(cluster):
    channel, room = unique("outage-"), unique("presence-outage-")
    listeners = [cluster.socket(node) for node in cluster.nodes]
    for listener in listeners:
        listener.joined(channel)
    cluster.stop_redis()
    accepted = []  # a node that has not seen Redis go yet accepts, and delivers once it is back

    def refused(node: Broadcaster) -> bool:
        status = trigger(node, channel, "refused")[0]
        if status == 200:
            accepted.append("refused")
        return status == 503

    for node in cluster.nodes:
        eventually(lambda node=node: refused(node), SETTLE,
                   f"a 503 from the node on port {node.port}")
        status, answer = trigger(node, channel, "refused")
        assert status == 503
        assert "Redis" in answer["error"], answer
    joiner = cluster.socket(cluster.nodes[1])
    joiner.subscribe(room, member("early"))
    code, message = error(joiner.outcome(room))
    assert code == 4200 and "Redis" in message, message

    cluster.start_redis()
    trigger_until_accepted(cluster.nodes[0], channel, "back")
    for listener in listeners:
        events = [listener.next_event(SETTLE) for _ in range(len(accepted) + 1)]
        assert None not in events, events
        assert sorted(event["event"] for event in events) == ["back", *accepted], events
    for node in cluster.nodes:  # every node accepts again, and reaches every node
        trigger_until_accepted(node, channel, f"from-{node.port}")
        assert [listener.next_event(SETTLE)["event"] for listener in listeners] == \
            [f"from-{node.port}"] * 3
    assert joiner.joined(room, member("late"))["event"].endswith("subscription_succeeded")


def test_order_events_made_while_redis_is_down_arrive_once_in_order(cluster, tmp_path):
    entry, listening = cluster.nodes[0], cluster.nodes[1]
    webapp: Webapp = start_webapp(entry.port, tmp_path / "web.sqlite3")
    worker = start_worker(webapp)
    try:
        alice = cluster.socket(listening)
        subscribed(alice, ALICE_CHANNEL, http_authorizer(webapp, token_of(webapp, ALICE)))
        admin = token_of(webapp, ADMIN)
        transition(webapp, admin, 6, "paid")
        assert alice.next_event(SETTLE)["event"] == "order.status.updated"

        cluster.stop_redis()
        probe = unique("probe-")
        eventually(lambda: trigger(entry, probe, "probe")[0] == 503, SETTLE,
                   "the entry node refusing triggers")
        path = ["processing", "shipped", "delivered"]
        for status in path:
            transition(webapp, admin, 6, status)
        eventually(lambda: any(attempts >= 2 and not done for attempts, done
                               in outbox_state(tmp_path / "web.sqlite3")), SETTLE,
                   "the worker retrying during the outage")

        cluster.start_redis()
        eventually(lambda: all(done for _, done in outbox_state(tmp_path / "web.sqlite3")),
                   SETTLE * 2, "the outbox delivering every event")
        trigger_until_accepted(entry, ALICE_CHANNEL, "marker")
        received = []
        while (event := alice.next_event(SETTLE)) is not None and event["event"] != "marker":
            received.append(json.loads(event["data"])["current_status"])
        assert event is not None, f"the marker never arrived after {received}"
        assert received == path
    finally:
        worker.stop()
        webapp.stop()



def roster_seen(observer: PusherSocket, joined: dict, via: Broadcaster, channel: str) -> set[str]:
    """The roster ``observer`` believes in: its ``subscription_succeeded`` roster, then every
    member event it got until a marker triggered now."""
    seen = set(roster(joined)[1])
    for event, user in member_events([observer], via, channel)[0]:
        if event == "member_added":
            seen.add(user)
        else:
            seen.discard(user)
    return seen


def test_a_frozen_node_past_the_ttl_rejoins_cleanly_when_it_wakes(cluster):
    channel = unique("presence-frozen-")
    one, two, frozen = cluster.nodes
    watchers = [cluster.socket(one), cluster.socket(two)]
    joined = [watcher.joined(channel, member(f"watcher{i}"))
              for i, watcher in enumerate(watchers)]
    for user in ("ice0", "ice1"):
        cluster.member_on(frozen, channel, user)
    cluster.member_on(frozen, channel, "split")
    cluster.member_on(one, channel, "split")  # split's other tab stays on a live node
    everyone = {"watcher0", "watcher1", "ice0", "ice1", "split"}
    cluster.roster_agreed(channel, everyone)

    cluster.freeze(frozen)
    live = [one, two]
    eventually(lambda: all(cluster.users(node, channel) == everyone - {"ice0", "ice1"}
                           for node in live), CRASH_DEADLINE, "the frozen node's users reaped")
    cluster.thaw(frozen)

    cluster.roster_agreed(channel, everyone)
    cluster.connections_agreed(6)
    cluster.agreed(lambda node: cluster.get(node, f"/channels/{channel}",
                                            info="subscription_count"),
                   (200, {"occupied": True, "subscription_count": 6}), "subscriptions")
    for watcher, answer in zip(watchers, joined, strict=True):
        assert roster_seen(watcher, answer, two, channel) == everyone


def test_redis_restarted_empty_is_filled_again_by_every_node(cluster):
    channel = unique("presence-amnesia-")
    one, two, three = cluster.nodes
    watcher = cluster.socket(one)
    joined = watcher.joined(channel, member("watcher"))
    cluster.member_on(two, channel, "bea")
    cluster.member_on(three, channel, "bea")
    cluster.member_on(three, channel, "cid")
    cluster.socket(two)
    everyone = {"watcher", "bea", "cid"}
    cluster.roster_agreed(channel, everyone)

    cluster.stop_redis()
    cluster.start_redis()  # the same port, nothing in it

    cluster.roster_agreed(channel, everyone)
    cluster.connections_agreed(5)
    cluster.agreed(lambda node: cluster.get(node, f"/channels/{channel}",
                                            info="subscription_count,user_count"),
                   (200, {"occupied": True, "subscription_count": 4, "user_count": 3}),
                   "the channel's counts")
    # Counts come from the cluster state; a trigger needs node three's bus resubscribed too
    # (503 until then), which the marker below is.
    eventually(lambda: cluster.accepts(three), SETTLE, "node three accepting triggers")
    assert roster_seen(watcher, joined, three, channel) == everyone


def test_a_presence_join_as_a_frozen_node_wakes_is_admitted_or_refused_never_half(cluster):
    """Waking past the TTL, the node finds its subscription silent and resubscribes; a join's
    answer in that moment may be lost. The join is then refused with a pusher:error (it was
    never answered at all, and its member stayed in Redis), and no ghost remains."""
    channel = unique("presence-waking-")
    one, two, waking = cluster.nodes
    watchers = [cluster.socket(one), cluster.socket(two)]
    joined = [watcher.joined(channel, member(f"watcher{i}"))
              for i, watcher in enumerate(watchers)]
    cluster.member_on(waking, channel, "sleeper")
    cluster.freeze(waking)
    eventually(lambda: cluster.users(one, channel) == {"watcher0", "watcher1"},
               CRASH_DEADLINE, "the frozen node reaped")
    cluster.thaw(waking)
    joiner = cluster.socket(waking)
    joiner.subscribe(channel, member("early"))
    answer = joiner.next_message(SETTLE, lambda m: m.get("channel") == channel
                                 or m["event"] == "pusher:error")
    assert answer is not None, "the join was never answered"
    admitted = answer["event"] == "pusher_internal:subscription_succeeded"
    if not admitted:
        assert "Redis" in error(answer)[1], answer
    everyone = {"watcher0", "watcher1", "sleeper", *(["early"] if admitted else [])}
    cluster.roster_agreed(channel, everyone)
    for watcher, answer in zip(watchers, joined, strict=True):
        assert roster_seen(watcher, answer, one, channel) == everyone
