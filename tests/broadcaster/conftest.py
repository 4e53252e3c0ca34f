import pytest

from tests.pusher_socket import PusherSocket


@pytest.fixture
def sockets(server):
    """Open sockets on the module's server on demand; all are closed after the test."""
    opened: list[PusherSocket] = []

    def open_socket(**options) -> PusherSocket:
        opened.append(PusherSocket(server.ws_url, **options))
        return opened[-1]

    yield open_socket
    for socket in opened:
        socket.close()
