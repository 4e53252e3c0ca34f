import pusher
import pytest

from tests.pusher_socket import PusherSocket
from tests.servers import HOST


@pytest.fixture
def sdk(server):
    """The official Pusher Python SDK, pointed at our server (keywords: its order differs)."""
    return pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret,
                         host=HOST, port=server.port, ssl=False)


@pytest.fixture
def subscribers(server):
    """Make subscribers on demand; all are closed after the test."""
    made: list[PusherSocket] = []

    def make() -> PusherSocket:
        made.append(PusherSocket.to(server))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()
