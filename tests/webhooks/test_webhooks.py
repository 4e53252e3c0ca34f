"""Webhooks from a real broadcaster to a real HTTP receiver, checked with the pusher SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pusher_socket import PusherSocket
from tests.servers import Broadcaster, free_port, start_broadcaster
from tests.waiting import eventually
from tests.webhooks.receiver import Receiver, webhooks_env

ALL = ("channel_occupied", "channel_vacated", "member_added", "member_removed",
       "client_event", "cache_miss")


@pytest.fixture
def server(receiver: Receiver) -> Iterator[Broadcaster]:
    """A broadcaster sending every webhook to ``receiver``, killed after the test: a graceful
    stop would wait for the endings still in their 3 s window (that it sends them is
    test_an_ending_in_its_window_at_shutdown_is_still_sent)."""
    server = start_broadcaster(webhooks_env(receiver.url, *ALL))
    yield server
    server.kill()


def test_occupied_then_vacated_after_the_window(server: Broadcaster, receiver: Receiver) -> None:
    socket = PusherSocket.to(server)
    socket.joined("news")
    eventually(lambda: receiver.names("news") == ["channel_occupied"], what="channel_occupied")
    socket.close()
    eventually(lambda: receiver.names("news") == ["channel_occupied", "channel_vacated"],
               what="channel_vacated")
    assert receiver.events[0] == {"name": "channel_occupied", "channel": "news"}
    assert receiver.events[1] == {"name": "channel_vacated", "channel": "news"}


def test_a_reconnect_within_the_window_sends_nothing(server: Broadcaster,
                                                     receiver: Receiver) -> None:
    first = PusherSocket.to(server)
    first.joined("news")
    eventually(lambda: receiver.names("news") == ["channel_occupied"], what="channel_occupied")
    first.close()
    time.sleep(1)
    second = PusherSocket.to(server)
    second.joined("news")
    second.close()  # vacated again: this one is sent, 3 s later
    eventually(lambda: receiver.names("news") == ["channel_occupied", "channel_vacated"],
               what="the second channel_vacated")
    time.sleep(3.5)
    assert receiver.names("news") == ["channel_occupied", "channel_vacated"]


def test_a_reconnect_after_the_window_sends_vacated_then_occupied(
        server: Broadcaster, receiver: Receiver) -> None:
    first = PusherSocket.to(server)
    first.joined("news")
    first.close()
    eventually(lambda: receiver.names("news") == ["channel_occupied", "channel_vacated"],
               what="channel_vacated")
    second = PusherSocket.to(server)
    second.joined("news")
    eventually(lambda: receiver.names("news") == [
        "channel_occupied", "channel_vacated", "channel_occupied"], what="occupied again")


def test_members_added_and_removed_at_user_level(server: Broadcaster,
                                                 receiver: Receiver) -> None:
    data = json.dumps({"user_id": "7", "user_info": {}})
    tabs = [PusherSocket.to(server) for _ in range(2)]
    for tab in tabs:
        tab.joined("presence-room", data)
    eventually(lambda: "member_added" in receiver.names("presence-room"), what="member_added")
    for tab in tabs:
        tab.close()
    eventually(lambda: "member_removed" in receiver.names("presence-room"),
               what="member_removed")
    members = [e for e in receiver.events if e["name"].startswith("member_")]
    assert members == [
        {"name": "member_added", "channel": "presence-room", "user_id": "7"},
        {"name": "member_removed", "channel": "presence-room", "user_id": "7"}]


def test_client_event(server: Broadcaster, receiver: Receiver) -> None:
    data = json.dumps({"user_id": "7", "user_info": {}})
    sender = PusherSocket.to(server)
    sender.joined("presence-chat", data)
    sender.send({"event": "client-typing", "channel": "presence-chat", "data": {"a": 1}})
    eventually(lambda: "client_event" in receiver.names("presence-chat"), what="client_event")
    event = next(e for e in receiver.events if e["name"] == "client_event")
    assert event == {"name": "client_event", "channel": "presence-chat",
                     "event": "client-typing", "data": '{"a":1}',
                     "socket_id": sender.socket_id, "user_id": "7"}


def test_a_500_is_retried_and_the_webhook_arrives_once() -> None:
    receiver = Receiver(statuses=[500])
    server = start_broadcaster(webhooks_env(receiver.url, "channel_occupied"))
    try:
        PusherSocket.to(server).joined("news")
        eventually(lambda: receiver.names("news") == ["channel_occupied"], what="the retry")
        time.sleep(3)
        assert receiver.posts == 2
        assert receiver.names("news") == ["channel_occupied"]
    finally:
        server.stop()
        receiver.close()


@pytest.mark.slow  # the third try comes 3 s in, and stopping waits for the retried URL
def test_each_failed_try_is_one_line_saying_what_failed(tmp_path: Path) -> None:
    failing, refusing = Receiver(statuses=[500, 503]), Receiver()
    refusing.close()  # nothing listens on its port now
    webhooks = [{"url": url, "event_types": ["channel_occupied"]}
                for url in (failing.url, refusing.url)]
    log = tmp_path / "broadcaster.log"
    with log.open("wb") as stderr:
        server = start_broadcaster({"RESOUND_APP_WEBHOOKS": json.dumps(webhooks)}, stderr=stderr)
    try:
        PusherSocket.to(server).joined("news")
        eventually(lambda: failing.names("news") == ["channel_occupied"], what="the third try")
        lines = [line for line in log.read_text().splitlines() if "webhook to" in line]
        assert [line.split(" WARNING broadcaster.webhooks.sender: ", 1)[1] for line in lines
                if failing.url in line] == [
            f"webhook to {failing.url} answered 500; retrying in 1 s",
            f"webhook to {failing.url} answered 503; retrying in 2 s"]
        port = refusing.url.split(":")[-1].split("/")[0]
        refused = [line for line in lines if refusing.url in line]
        assert refused and all(line.endswith(
            f"webhook to {refusing.url} failed: cannot connect to 127.0.0.1:{port}: Connection "
            f"refused; retrying in {2 ** number} s") for number, line in enumerate(refused)), lines
        assert not any("Error(" in line or "ConnectionKey" in line for line in lines), lines
    finally:
        server.stop()
        failing.close()


@pytest.mark.slow
def test_a_receiver_down_for_20_s_gets_the_webhook_when_it_is_back() -> None:
    down = Receiver()
    port, url = down.port, down.url
    down.close()  # nothing listens on the port now
    server = start_broadcaster(webhooks_env(url, "channel_occupied"))
    try:
        PusherSocket.to(server).joined("news")
        time.sleep(20)
        receiver = Receiver(port=port)
        try:
            eventually(lambda: receiver.names("news") == ["channel_occupied"], timeout=60,
                       what="the webhook after the receiver came back")
        finally:
            receiver.close()
    finally:
        server.stop()


@pytest.mark.parametrize("webhooks, problem", [
    ('[{"url": "ftp://x", "event_types": ["channel_occupied"]}]', "http:// or https:// URL"),
    ('[{"url": "http://x", "event_types": ["channel_busy"]}]', "unknown event type"),
])
def test_a_bad_webhook_stops_start_up_with_one_line(webhooks: str, problem: str) -> None:
    env = {**os.environ, "REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
           "RESOUND_APP_WEBHOOKS": webhooks}
    result = subprocess.run([sys.executable, "-m", "broadcaster", "start", "--host", "127.0.0.1",
                             "--port", str(free_port())], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RESOUND_APP_WEBHOOKS" in lines[0] and problem in lines[0], lines


def test_cache_miss(server: Broadcaster, receiver: Receiver) -> None:
    PusherSocket.to(server).joined("cache-prices")
    eventually(lambda: "cache_miss" in receiver.names("cache-prices"), what="cache_miss")
    assert {"name": "cache_miss", "channel": "cache-prices"} in receiver.events


def test_the_filter_and_headers_pick_and_dress_the_webhooks() -> None:
    receiver = Receiver()
    webhooks = [{"url": receiver.url, "event_types": ["channel_occupied"],
                 "filter": {"channel_name_starts_with": "private-",
                            "channel_name_ends_with": ".orders"},
                 "headers": {"X-Tenant": "shop"}}]
    server = start_broadcaster({"RESOUND_APP_WEBHOOKS": json.dumps(webhooks)})
    try:
        socket = PusherSocket.to(server)
        for channel in ("news", "private-user.1.profile", "private-user.1.orders"):
            socket.joined(channel)
        eventually(lambda: receiver.events, what="a webhook")
        time.sleep(1)
        assert receiver.events == [{"name": "channel_occupied",
                                    "channel": "private-user.1.orders"}]
        assert receiver.headers[0]["X-Tenant"] == "shop"
        assert receiver.headers[0]["Content-Type"] == "application/json"
    finally:
        server.stop()
        receiver.close()


def test_with_batching_the_events_of_one_moment_go_in_one_request() -> None:
    receiver = Receiver()
    server = start_broadcaster({**webhooks_env(receiver.url, "channel_occupied"),
                                "RESOUND_APP_WEBHOOK_BATCHING": "true"})
    try:
        socket = PusherSocket.to(server)
        for channel in ("a", "b", "c", "d"):  # one burst, well inside the batch window
            socket.subscribe(channel)
        eventually(lambda: len(receiver.events) == 4, what="every webhook")
        assert [sorted(e["channel"] for e in body["events"]) for body in receiver.bodies] == [
            ["a", "b", "c", "d"]]
    finally:
        server.stop()
        receiver.close()


def test_without_batching_each_event_is_a_request_of_its_own(server: Broadcaster,
                                                            receiver: Receiver) -> None:
    socket = PusherSocket.to(server)
    for channel in ("a", "b", "c"):
        socket.subscribe(channel)
    eventually(lambda: len(receiver.events) == 3, what="every webhook")
    assert [len(body["events"]) for body in receiver.bodies] == [1, 1, 1]


def test_a_failing_url_holds_up_no_other_url_nor_event() -> None:
    failing, working = Receiver(statuses=[500] * 10_000), Receiver()
    webhooks = [{"url": url, "event_types": ["channel_occupied"]}
                for url in (failing.url, working.url)]
    server = start_broadcaster({"RESOUND_APP_WEBHOOKS": json.dumps(webhooks)})
    try:
        socket = PusherSocket.to(server)
        socket.joined("one")
        eventually(lambda: working.names("one") == ["channel_occupied"],
                   what="the working URL's webhook while the other is retried")
        socket.joined("two")
        eventually(lambda: working.names("two") == ["channel_occupied"],
                   what="the next event while the first is still retried")
        assert failing.posts >= 1 and failing.events == []
    finally:
        server.stop()
        failing.close()
        working.close()


def test_subscription_count_webhooks_follow_the_count_but_never_on_presence() -> None:
    receiver = Receiver()
    server = start_broadcaster(webhooks_env(receiver.url, "subscription_count"))
    try:
        first, second = PusherSocket.to(server), PusherSocket.to(server)
        first.joined("news")
        eventually(lambda: len(receiver.events) == 1, what="the first count")
        second.joined("news")
        eventually(lambda: len(receiver.events) == 2, what="the second count")
        second.close()
        eventually(lambda: len(receiver.events) == 3, what="the count after a leave")
        assert receiver.events == [
            {"name": "subscription_count", "channel": "news", "subscription_count": count}
            for count in (1, 2, 1)]
        first.joined("presence-room", json.dumps({"user_id": "7", "user_info": {}}))
        first.joined("private-x")  # private channels are counted too
        eventually(lambda: len(receiver.events) == 4, what="the private channel's count")
        time.sleep(1)
        assert [e["channel"] for e in receiver.events[3:]] == ["private-x"]
    finally:
        server.stop()
        receiver.close()


def test_an_ending_in_its_window_at_shutdown_is_still_sent() -> None:
    receiver = Receiver()
    server = start_broadcaster(webhooks_env(receiver.url, "channel_occupied",
                                            "channel_vacated"))
    try:
        PusherSocket.to(server).joined("news")
        eventually(lambda: receiver.names("news") == ["channel_occupied"],
                   what="channel_occupied")
        server.stop()  # SIGTERM: the socket is closed, so the channel is vacated
        assert receiver.names("news") == ["channel_occupied", "channel_vacated"]
    finally:
        server.stop()
        receiver.close()
