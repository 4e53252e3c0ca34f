"""History channels end to end: real broadcaster processes, on one process and on two nodes of
each Redis mode (one server, Cluster, Sentinel); the HTTP endpoint through the official SDK's
signing; resume over the socket on the other node; two nodes publishing at once still give one
gapless sequence; a Redis restarted empty starts a new epoch, and a resume across it fails."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pusher
import pytest

from tests.api.redis_server import redis_server
from tests.api.wire import signed_request
from tests.cluster.conftest import Cluster
from tests.conftest import REDIS_MODES
from tests.pusher_socket import PusherSocket, error
from tests.sdk import sdk_for
from tests.servers import HOST, Broadcaster, free_port, start_broadcaster
from tests.waiting import eventually

RULES = [{"channels": "orders-*", "limit": 5, "ttl": 600}]
HISTORY = {"RESOUND_APP_HISTORY": json.dumps(RULES)}


def scaled(url: str) -> dict[str, str]:
    return {**HISTORY, "REVERB_SCALING_ENABLED": "true", "REDIS_URL": url}


@pytest.fixture(scope="module", params=["local", *REDIS_MODES])
def nodes(request: pytest.FixtureRequest) -> Iterator[tuple[Broadcaster, Broadcaster]]:
    """Two nodes of one server: on one process, the same node twice."""
    if request.param == "local":
        node = start_broadcaster(HISTORY)
        yield node, node
        node.stop()
        return
    env = scaled(request.getfixturevalue(f"redis_{request.param}_url"))
    first = start_broadcaster(env)
    second = start_broadcaster(env)
    yield first, second
    first.stop()
    second.stop()


_channels = iter(range(10**6))


def fresh() -> str:
    return f"orders-{next(_channels)}-{free_port()}"


def frames(socket: PusherSocket, count: int) -> list[dict]:
    """The next ``count`` channel events, as sent."""
    got = [socket.next_event() for _ in range(count)]
    assert all(got), got
    return got


def test_history_events_carry_serials_and_other_channels_are_unchanged(nodes):
    a, b = nodes
    channel = fresh()
    socket = PusherSocket.to(a)
    joined = socket.joined(channel)
    assert (joined["serial"], joined["epoch"]) == (0, "")
    plain = socket.joined("news-plain")
    assert set(plain) == {"event", "channel", "data"}
    for n in range(3):
        sdk_for(b).trigger([channel, "news-plain"], f"e{n}", {"n": n})
    got = frames(socket, 6)
    history = [m for m in got if m["channel"] == channel]
    assert [m["serial"] for m in history] == [1, 2, 3]
    assert len({m["epoch"] for m in history}) == 1 and history[0]["epoch"]
    assert all(set(m) == {"event", "channel", "data"} for m in got if m["channel"] != channel)
    late = PusherSocket.to(b)
    assert late.joined(channel)["serial"] == 3  # its position at subscription
    socket.close()
    late.close()


def test_the_http_endpoint_lists_events_in_order_signed_as_the_sdk_signs(nodes):
    a, b = nodes
    channel = fresh()
    for n in range(7):
        sdk_for(a).trigger(channel, f"e{n}", {"n": n})
    client = sdk_for(b)._pusher_client
    answer = client.http.send_request(pusher.http.Request(
        client, "GET", f"/apps/{b.app_id}/channels/{channel}/events", {"after": "3",
                                                                      "limit": "2"}))
    assert [e["serial"] for e in answer["events"]] == [4, 5]
    assert answer["events"][0] == {"serial": 4, "event": "e3", "data": '{"n": 3}'}
    assert (answer["latest"], answer["oldest"]) == (7, 3)  # the last 5 are kept
    assert signed_request(b, "GET", f"/apps/{b.app_id}/channels/news/events")[0] == 404
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"after": "-1"}, {"after": "x"}):
        status, reason = signed_request(b, "GET", f"/apps/{b.app_id}/channels/{channel}/events",
                                        params=bad)
        assert status == 400 and "error" in reason, (bad, status, reason)


def test_a_socket_resumes_on_the_other_node_byte_for_byte_or_is_told_to_reload(nodes):
    a, b = nodes
    channel = fresh()
    first = PusherSocket.to(a)
    first.joined(channel)
    for n in range(4):
        sdk_for(a).trigger(channel, f"e{n}", {"n": n})
    sent = [first.ws.recv(timeout=5) for _ in range(4)]
    epoch = json.loads(sent[0])["epoch"]
    again = PusherSocket.to(b)  # a reconnect lands on the other node
    again.joined(channel)
    again.send({"event": "resound:resume", "data": {"channel": channel, "after": 1,
                                                    "epoch": epoch}})
    replay = [again.ws.recv(timeout=5) for _ in range(3)]
    assert replay == sent[1:]  # exactly as first sent
    done = again.recv()
    assert done["event"] == "resound:resume_succeeded"
    assert json.loads(done["data"]) == {"latest": 4, "epoch": epoch}
    again.send({"event": "resound:resume", "data": {"channel": channel, "after": 1,
                                                    "epoch": "not-" + epoch}})
    failed = again.recv()
    assert failed["event"] == "resound:resume_failed" and "epoch" in json.loads(
        failed["data"])["reason"]
    for n in range(4, 10):  # past the window of 5: serial 2 is gone
        sdk_for(a).trigger(channel, f"e{n}", {"n": n})
    frames(again, 6)
    again.send({"event": "resound:resume", "data": {"channel": channel, "after": 1}})
    failed = again.recv()
    assert failed["event"] == "resound:resume_failed"
    assert json.loads(failed["data"])["latest"] == 10
    again.send({"event": "resound:resume", "data": {"channel": fresh(), "after": 0}})
    assert error(again.recv())[0] == 4009
    first.close()
    again.close()


def test_two_nodes_publishing_at_once_give_one_gapless_sequence_everywhere(nodes):
    a, b = nodes
    channel = fresh()
    watchers = [PusherSocket.to(node, max_queue=None) for node in (a, b)]
    for watcher in watchers:
        watcher.joined(channel)

    def publish(node: Broadcaster, prefix: str) -> None:
        client = sdk_for(node)
        for n in range(40):
            client.trigger(channel, f"{prefix}{n}", {})

    threads = [threading.Thread(target=publish, args=(node, p)) for node, p in ((a, "a"),
                                                                                 (b, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    seen = [[(m["serial"], m["event"]) for m in frames(watcher, 80)] for watcher in watchers]
    assert [serial for serial, _ in seen[0]] == list(range(1, 81))
    assert seen[0] == seen[1]  # the same order on both nodes
    for prefix in ("a", "b"):  # each publisher's own events in the order it sent them
        assert [e for _, e in seen[0] if e[0] == prefix] == [f"{prefix}{n}" for n in range(40)]
    for watcher in watchers:
        watcher.close()


def test_a_redis_restarted_empty_starts_a_new_epoch_and_a_resume_across_it_fails():
    port = free_port()
    channel = fresh()
    with redis_server(port) as url:
        node = start_broadcaster(scaled(url))
        socket = PusherSocket.to(node)
        socket.joined(channel)
        sdk_for(node).trigger(channel, "before", {})
        before = socket.next_event()
    try:
        with redis_server(port):  # the same port, nothing in it
            eventually(lambda: Cluster.accepts(node), 20, "the node accepting triggers again")
            sdk_for(node).trigger(channel, "after", {})
            after = socket.next_message(wanted=lambda m: m["event"] == "after")
            assert (before["serial"], after["serial"]) == (1, 1)
            assert after["epoch"] != before["epoch"]
            socket.send({"event": "resound:resume", "data": {
                "channel": channel, "after": 1, "epoch": before["epoch"]}})
            failed = socket.next_message(wanted=lambda m: m["event"].startswith("resound:"))
            assert failed["event"] == "resound:resume_failed"
            assert json.loads(failed["data"])["epoch"] == after["epoch"]
            socket.close()
    finally:
        node.stop()


def test_a_bad_history_setting_stops_start_up_with_one_line():
    env = {"RESOUND_APP_HISTORY": '[{"channels": "orders-*", "limit": 0}]',
           "REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}
    done = subprocess.run([sys.executable, "-m", "broadcaster", "start", "--host", HOST,
                           "--port", str(free_port())], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["broadcaster: bad configuration: RESOUND_APP_HISTORY[0].limit must be at "
                     "least 1, got 0"], lines
