"""What one publication does to one app's sockets in this process, whichever bus carried it."""

from __future__ import annotations

from shared.payloads import encode_message

from .messages import UNAUTHORIZED
from .publication import TERMINATE_USER, WATCHLIST, Publication
from .state import AppState


def deliver(app: AppState, publication: Publication,
            position: tuple[int, str] | None = None) -> None:
    """Fan an event out (one encoding per channel), or close a terminated user's sockets.
    ``position``: the serial and epoch the cluster gave a history channel's event."""
    if publication.kind == TERMINATE_USER:
        if publication.user_id is not None:
            for client in app.user_sockets(publication.user_id):
                client.close(UNAUTHORIZED, "connection terminated by the server for this user")
        return
    if publication.kind == WATCHLIST:
        watchers = app.watchers.get(publication.user_id or "")
        if watchers is not None:
            app.send_to_channel(watchers, encode_message(publication.event, publication.data))
        return
    cacheable = publication.cacheable
    for name in publication.channels:
        message = encode_message(publication.event, publication.data, channel=name,
                                 user_id=publication.user_id)
        app.deliver(name, message, publication.except_socket_id, cacheable, position)
