"""The official Pusher server SDK (``pusher`` 3.3.4), pointed at a test broadcaster."""

from __future__ import annotations

import pusher

from tests.servers import HOST, Broadcaster


def sdk_for(server: Broadcaster) -> pusher.Pusher:
    """Keywords only: the SDK's positional order differs from what one would guess."""
    return pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret,
                         host=HOST, port=server.port, ssl=False)
