import pytest

from tests.pusher_socket import PusherSocket
from tests.sdk import sdk_for


@pytest.fixture
def sdk(server):
    """The official Pusher Python SDK, pointed at our server (keywords: its order differs)."""
    return sdk_for(server)


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
