"""Idempotency keys on the trigger API (beyond Pusher), on one process and across two processes
sharing a real redis-server: a repeated key is answered 200 and not delivered again, different
keys are each delivered, batch items carry their own keys, and a malformed key is a 400."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.api.wire import post_json
from tests.pusher_socket import PusherSocket
from tests.sdk import assert_nothing_then
from tests.servers import Broadcaster, broadcaster_pair, start_broadcaster

EVENTS = "/apps/{}/events"
BATCH = "/apps/{}/batch_events"


@pytest.fixture(scope="module", params=["local", "redis"])
def nodes(request) -> Iterator[tuple[Broadcaster, Broadcaster]]:
    """Where to trigger twice: one process twice, or two processes on one Redis."""
    if request.param == "local":
        only = start_broadcaster()
        yield only, only
        only.stop()
        return
    env = {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": request.getfixturevalue("redis_url")}
    with broadcaster_pair(env) as pair:
        yield pair


@pytest.fixture
def listener(nodes) -> Iterator[tuple[PusherSocket, str]]:
    """A socket on the second node, subscribed to a channel of its own: (socket, channel)."""
    channel = f"orders-{uuid.uuid4().hex[:8]}"
    socket = PusherSocket.to(nodes[1])
    socket.joined(channel)
    yield socket, channel
    socket.close()


def trigger(server: Broadcaster, channel: str, name: str, key: str | None = None,
            **fields: object) -> tuple[int, dict]:
    headers = {"Idempotency-Key": key} if key is not None else None
    return post_json(server, EVENTS.format(server.app_id),
                     {"name": name, "channel": channel, "data": "{}", **fields}, headers=headers)


def received(socket: PusherSocket, count: int) -> list[str]:
    events = [socket.next_event() for _ in range(count)]
    return [event["event"] if event else "nothing" for event in events]


def test_a_repeated_key_is_answered_200_and_delivered_once_and_other_keys_are_delivered(
        nodes, listener):
    first, second = nodes
    socket, channel = listener
    key, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert trigger(first, channel, "placed", key) == (200, {})
    assert trigger(second, channel, "placed", key) == (200, {})  # a retry, on any node
    assert trigger(first, channel, "paid", other) == (200, {})
    status, answer = trigger(second, channel, "paid", other, info="subscription_count")
    assert status == 200 and channel in answer["channels"]  # a repeat still reports counts
    assert received(socket, 2) == ["placed", "paid"]
    assert_nothing_then(socket, first, channel)


def test_batch_items_carry_their_own_keys(nodes, listener):
    first, second = nodes
    socket, channel = listener
    one, two, three = (str(uuid.uuid4()) for _ in range(3))

    def item(name: str, key: str | None = None) -> dict[str, object]:
        fields: dict[str, object] = {"name": name, "channel": channel, "data": "{}"}
        if key is not None:
            fields["idempotency_key"] = key
        return fields

    batch = [item("e1", one), item("e1", one), item("e3"), item("e4", two)]
    assert post_json(first, BATCH.format(first.app_id), {"batch": batch}) == (200, {})
    again = [item("e4", two), item("e6", three), item("e7")]
    assert post_json(second, BATCH.format(second.app_id), {"batch": again}) == (200, {})
    assert received(socket, 5) == ["e1", "e3", "e4", "e6", "e7"]
    assert_nothing_then(socket, first, channel)


def test_a_key_reused_for_another_event_is_a_422_naming_it_and_is_not_delivered(nodes,
                                                                               listener):
    """Issue 24: a key is a promise that the request is a retry; another event under it is a
    client bug, answered as the webapp answers it, not a silent 200."""
    first, second = nodes
    socket, channel = listener
    key = str(uuid.uuid4())
    assert trigger(first, channel, "placed", key) == (200, {})
    status, answer = trigger(second, channel, "placed", key, data='{"other": 1}')
    assert status == 422
    assert key in answer["error"] and "different event" in answer["error"], answer
    assert trigger(second, channel, "placed", key) == (200, {})  # the real retry
    assert received(socket, 1) == ["placed"]
    assert_nothing_then(socket, first, channel)


def test_a_batch_reusing_a_key_for_another_event_is_refused_whole(nodes, listener):
    first, second = nodes
    socket, channel = listener
    used, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    event = {"name": "e1", "channel": channel, "data": "{}"}
    assert trigger(first, channel, "e1", used) == (200, {})
    batch = [{**event, "name": "e2", "idempotency_key": fresh},
             {**event, "name": "e3", "idempotency_key": used}]
    status, answer = post_json(second, BATCH.format(second.app_id), {"batch": batch})
    assert status == 422 and used in answer["error"], answer
    # Nothing of it was published nor claimed: the corrected batch goes out whole.
    batch[1] = {**event, "idempotency_key": used}
    assert post_json(second, BATCH.format(second.app_id), {"batch": batch}) == (200, {})
    assert received(socket, 2) == ["e1", "e2"]
    assert_nothing_then(socket, first, channel)


@pytest.mark.parametrize("key", ["has space", "x" * 201, "", "é"])
def test_a_malformed_idempotency_key_header_is_a_400_naming_it(nodes, listener, key):
    first, _ = nodes
    socket, channel = listener
    status, answer = trigger(first, channel, "placed", key)
    assert status == 400
    assert "Idempotency-Key" in answer["error"] and "1 to 200" in answer["error"]
    assert_nothing_then(socket, first, channel)


@pytest.mark.parametrize("key", [7, "no/slash"])
def test_a_malformed_batch_idempotency_key_is_a_400_naming_the_item(nodes, listener, key):
    first, _ = nodes
    socket, channel = listener
    batch = [{"name": "ok", "channel": channel, "data": "{}"},
             {"name": "bad", "channel": channel, "data": "{}", "idempotency_key": key}]
    status, answer = post_json(first, BATCH.format(first.app_id), {"batch": batch})
    assert status == 400
    assert answer["error"].startswith("batch[1]: 'idempotency_key'"), answer
    assert_nothing_then(socket, first, channel)  # not even the valid item went out
