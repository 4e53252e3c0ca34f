"""Publishing, user termination and slow consumers, with the listener in this process."""

import json
import time
from socket import create_connection

import pytest

from broadcaster.protocol.publication import Publication
from shared.signatures import sign_user
from tests.broadcaster.inprocess import InProcessServer
from tests.pusher_socket import PusherSocket, error
from tests.servers import APP_ID
from tests.waiting import eventually


@pytest.fixture
def live():
    server = InProcessServer(write_buffer_limit=64_000)
    yield server
    server.stop()


def test_publish_reaches_every_subscriber_but_the_excluded_one(live):
    sockets = [PusherSocket(live.ws_url) for _ in range(4)]
    for socket in sockets:
        socket.joined("orders")
    other = PusherSocket(live.ws_url)
    other.joined("private-admin")
    live.publish(["orders", "private-admin", "empty"], "order.created", '{"id":1}',
                 except_socket_id=sockets[0].socket_id)
    for socket in sockets[1:]:
        assert socket.recv() == {"event": "order.created", "channel": "orders",
                                 "data": '{"id":1}'}
    assert other.recv()["channel"] == "private-admin"
    assert sockets[0].silent()


def test_publish_to_cache_channel_is_remembered(live):
    live.publish(["cache-rates"], "rate", '{"eur":1}')
    socket = PusherSocket(live.ws_url)
    socket.joined("cache-rates")
    assert socket.recv() == {"event": "rate", "channel": "cache-rates", "data": '{"eur":1}'}


def test_terminate_user_closes_every_socket_of_that_user(live):
    def signed_in(user_id):
        socket = PusherSocket(live.ws_url)
        user_data = json.dumps({"id": user_id})
        auth = sign_user("test-key", "test-secret", socket.socket_id, user_data)
        socket.send({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})
        assert socket.recv()["event"] == "pusher:signin_success"
        return socket

    tab1, tab2, bystander = signed_in("u1"), signed_in("u1"), signed_in("u2")
    member = PusherSocket(live.ws_url)
    member.joined("presence-room", json.dumps({"user_id": "u1"}))
    live.terminate_user("u1")
    for socket in (tab1, tab2, member):
        assert socket.closed_code() == 4009
    bystander.send({"event": "pusher:ping"})
    assert bystander.recv()["event"] == "pusher:pong"
    eventually(lambda: live.call(lambda: live.app.connection_count) == 1, 5.0,
               "the server forgetting the closed sockets")


def test_slow_consumer_is_closed_and_others_keep_receiving(live):
    slow = PusherSocket(live.ws_url, max_queue=1)
    fast = PusherSocket(live.ws_url)
    slow.joined("feed")
    fast.joined("feed")
    payload = json.dumps("x" * 10_000)

    for _ in range(40):  # bounded: 40 x 50 x 10 KB at most
        live.publish(["feed"], "tick", payload, times=50)
        for _ in range(50):
            assert fast.recv()["event"] == "tick"
        if live.call(lambda: live.app.connection_count) == 1:
            break
    assert live.call(lambda: live.app.connection_count) == 1, "the slow socket was never closed"
    # The server gave up on it; reading now drains the backlog down to the close frame.
    assert slow.closed_code(timeout=10) == 4100
    live.publish(["feed"], "after", "{}")
    assert fast.recv()["event"] == "after"


def test_shutdown_tells_sockets_4200(live):
    socket = PusherSocket(live.ws_url)
    live.run(live.server.shutdown)
    assert error(socket.recv())[0] == 4200
    assert socket.closed_code() == 4200


def test_frames_queued_in_one_loop_pass_arrive_whole_and_in_order(live):
    socket = PusherSocket(live.ws_url)
    socket.joined("seq")
    live.call(lambda: [live.server.publish(Publication(APP_ID, ("seq",), "n", str(n)))
                       for n in range(200)])
    assert [socket.recv()["data"] for _ in range(200)] == [str(n) for n in range(200)]
    assert socket.silent()


def test_idle_http_and_unfinished_connections_are_closed():
    server = InProcessServer(http_idle_timeout=0.3)
    try:
        silent = create_connection(("127.0.0.1", server.port), timeout=5)
        partial = create_connection(("127.0.0.1", server.port), timeout=5)
        partial.sendall(b"GET /app/test-key HTTP/1.1\r\nHost: x\r\n")
        kept_alive = create_connection(("127.0.0.1", server.port), timeout=5)
        kept_alive.sendall(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept_alive.recv(65536).startswith(b"HTTP/1.1 200")
        for sock in (silent, partial, kept_alive):
            assert sock.recv(65536) == b""  # closed by the server, well within the timeout
            sock.close()
        websocket = PusherSocket(server.ws_url)
        time.sleep(0.6)
        websocket.send({"event": "pusher:ping"})
        assert websocket.recv()["event"] == "pusher:pong"  # WebSockets follow ping_interval
        websocket.close()
    finally:
        server.stop()
