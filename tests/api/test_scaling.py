"""Two broadcaster processes sharing a real redis-server (Reverb's ``REVERB_SCALING_ENABLED``):
an event triggered on one reaches subscribers on both, ``socket_id`` exclusion included; client
events and terminated users cross between them too."""

import json
import os
import subprocess
import sys

import pytest

from tests.pusher_socket import PusherSocket, member
from tests.sdk import sdk_for
from tests.servers import HOST, free_port, start_broadcaster


@pytest.fixture(scope="module")
def pair(redis_url):
    env = {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": redis_url}
    first = start_broadcaster(env)
    try:
        host, port = redis_url.removeprefix("redis://").removesuffix("/0").split(":")
        second = start_broadcaster({"REVERB_SCALING_ENABLED": "true",
                                    "REDIS_HOST": host, "REDIS_PORT": port})
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def test_trigger_on_one_process_reaches_subscribers_on_both(pair):
    first, second = pair
    here, there, excluded = (PusherSocket.to(first), PusherSocket.to(second),
                             PusherSocket.to(second))
    try:
        for subscriber in (here, there, excluded):
            subscriber.joined("scaled-news")
        # One at a time: events published on two processes have no order between them.
        sdk_for(first).trigger("scaled-news", "first", {"n": 1}, socket_id=excluded.socket_id)
        assert [subscriber.next_event()["event"] for subscriber in (here, there)] == ["first"] * 2
        sdk_for(second).trigger("scaled-news", "second", {"n": 2})
        assert [subscriber.next_event()["event"] for subscriber in (here, there)] == ["second"] * 2
        # The excluded socket, on the other process, never got the first event.
        assert json.loads(excluded.next_event()["data"]) == {"n": 2}
    finally:
        for subscriber in (here, there, excluded):
            subscriber.close()


def test_whisper_on_one_process_reaches_the_other_but_not_its_sender(pair):
    first, second = pair
    sender, receiver = PusherSocket.to(first), PusherSocket.to(second)
    try:
        for socket in (sender, receiver):
            socket.joined("private-scaled-chat")
        sender.send({"event": "client-typing", "channel": "private-scaled-chat",
                     "data": {"who": "ann"}})
        whisper = receiver.next_event()
        assert whisper is not None, "the whisper never reached the other process"
        assert whisper["event"] == "client-typing"
        assert whisper["channel"] == "private-scaled-chat"
        assert json.loads(whisper["data"]) == {"who": "ann"}
        assert "user_id" not in whisper
        assert sender.silent()
    finally:
        sender.close()
        receiver.close()


def test_presence_whisper_on_another_process_carries_the_senders_user_id(pair):
    first, second = pair
    sender, receiver = PusherSocket.to(first), PusherSocket.to(second)
    try:
        sender.joined("presence-scaled-room", member("ann"))
        receiver.joined("presence-scaled-room", member("bob"))
        sender.send({"event": "client-wave", "channel": "presence-scaled-room", "data": "{}"})
        whisper = receiver.next_event()
        assert whisper is not None, "the whisper never reached the other process"
        assert (whisper["event"], whisper["user_id"]) == ("client-wave", "ann")
    finally:
        sender.close()
        receiver.close()


def test_terminate_user_on_one_process_closes_the_users_socket_on_the_other(pair):
    first, second = pair
    target, bystander = PusherSocket.to(second), PusherSocket.to(second)
    try:
        target.sign_in("scaled-user")
        bystander.sign_in("someone-else")
        assert sdk_for(first).terminate_user_connections("scaled-user") == {}
        assert target.closed_code() == 4009
        bystander.send({"event": "pusher:ping", "data": {}})
        assert bystander.recv()["event"] == "pusher:pong"
    finally:
        target.close()
        bystander.close()


def test_unreachable_redis_stops_start_up_with_a_clear_message():
    env = {**os.environ, "REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
           "REVERB_SCALING_ENABLED": "true", "REDIS_URL": f"redis://{HOST}:{free_port()}/0"}
    result = subprocess.run(
        [sys.executable, "-m", "broadcaster", "start", "--host", HOST, "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "Redis" in result.stderr and "REDIS_URL" in result.stderr
