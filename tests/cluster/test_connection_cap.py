"""REVERB_APP_MAX_CONNECTIONS counts the sockets of every node sharing one Redis."""

import pytest

from tests.api.redis_server import redis_server
from tests.pusher_socket import PusherSocket, error
from tests.servers import start_broadcaster
from tests.waiting import eventually


@pytest.fixture
def capped_pair():
    with redis_server() as url:
        env = {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": url,
               "REVERB_APP_MAX_CONNECTIONS": "2"}
        first = start_broadcaster(env)
        try:
            second = start_broadcaster(env)
        except Exception:
            first.stop()
            raise
        yield first, second
        first.stop()
        second.stop()


def test_the_connection_cap_holds_across_nodes(capped_pair):
    first, second = capped_pair
    here, there = PusherSocket.to(first), PusherSocket.to(second)
    refused = []

    def third_is_refused() -> bool:
        third = PusherSocket(first.ws_url)
        if third.greeting["event"] == "pusher:connection_established":
            third.close()  # the other node's socket is not counted yet: the flush is periodic
            return False
        refused.append(third)
        return True

    try:
        eventually(third_is_refused, 10.0, "the first node counting the second node's socket")
        assert error(refused[0].greeting)[0] == 4004
        assert refused[0].closed_code() == 4004
    finally:
        here.close()
        there.close()
