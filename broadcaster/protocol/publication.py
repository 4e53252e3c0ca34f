"""What every process must do for one app: a publication, whichever bus carries it."""

from __future__ import annotations

from dataclasses import dataclass

EVENT = "event"  # deliver ``event`` on ``channels``
TERMINATE_USER = "terminate_user"  # close every socket of ``user_id``
WATCHLIST = "watchlist"  # tell the sockets watching ``user_id`` (a watchlist event, in ``data``)
KINDS = (EVENT, TERMINATE_USER, WATCHLIST)
INTERNAL_PREFIX = "pusher_internal:"  # member events: delivered, never a cache channel's last event


@dataclass(frozen=True, slots=True)
class Publication:
    """What every process must do for one app: by default, deliver an event on channels.

    A client event carries the sender's ``user_id`` on presence channels; a
    :data:`TERMINATE_USER` publication names the user whose sockets every process closes.
    """

    app_id: str
    channels: tuple[str, ...]
    event: str
    data: str | None  # already a JSON-encoded string, as Pusher carries it; None: no data
    except_socket_id: str | None = None
    user_id: str | None = None
    kind: str = EVENT

    @property
    def cacheable(self) -> bool:
        """Whether a cache channel keeps this as its last event (member events are not kept)."""
        return self.kind == EVENT and not self.event.startswith(INTERNAL_PREFIX)
