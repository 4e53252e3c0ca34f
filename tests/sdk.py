"""The official Pusher server SDK (``pusher`` 3.3.4), pointed at a test broadcaster."""

from __future__ import annotations

import pusher

from tests.pusher_socket import PusherSocket
from tests.servers import HOST, Broadcaster


def sdk_for(server: Broadcaster) -> pusher.Pusher:
    """Keywords only: the SDK's positional order differs from what one would guess."""
    return pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret,
                         host=HOST, port=server.port, ssl=False)


def assert_nothing_then(socket: PusherSocket, server: Broadcaster, channel: str) -> None:
    """Nothing more arrived for ``socket``: its next event is a marker sent after the fact.

    Call it only once whatever might wrongly arrive has been handled by the broadcaster (e.g.
    another subscriber got the same trigger); then a late wrong event cannot slip past.
    """
    sdk_for(server).trigger(channel, "marker", "{}")
    assert socket.next_event()["event"] == "marker"
