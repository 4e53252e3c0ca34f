"""Watchlist events (Pusher's ``watchlist-events``): who of a signed-in user's watchlist is online.

A user is online while signed in on at least one socket anywhere in the cluster. The cluster
state decides first and last sockets (:class:`~broadcaster.protocol.requests.SignIn`,
:class:`~broadcaster.protocol.requests.SignOut`) and publishes the change; every node then tells
the sockets watching that user (:meth:`~broadcaster.protocol.state.AppState.watch`).
"""

from __future__ import annotations

from typing import Any

from shared.channels import channel_name_error
from shared.payloads import dumps, encode_message

from .publication import WATCHLIST, Publication

MAX_WATCHLIST = 100  # ids Pusher watches per user; the rest are ignored (with a 4302 error)
WATCHLIST_EVENTS = "pusher_internal:watchlist_events"
# The cluster state's roster of signed-in users, kept as a presence channel's is; no client can
# name it (channel names have no '#', users' own channels aside).
ONLINE_ROSTER = "#online"
_ID_CHECK_PREFIX = "watched-"  # a watched id must be a valid channel-name part, as a user id is


def watchlist_of(user: dict[str, Any]) -> tuple[tuple[str, ...], int]:
    """The ids in ``user_data.watchlist`` (the first :data:`MAX_WATCHLIST`, duplicates and
    malformed ids left out), and how many ids were given in all."""
    raw = user.get("watchlist")
    if not isinstance(raw, list):
        return (), 0
    ids: dict[str, None] = {}
    for item in raw[:MAX_WATCHLIST]:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str) and item and channel_name_error(_ID_CHECK_PREFIX + item) is None:
            ids[item] = None
    return tuple(ids), len(raw)


def events_message(online: tuple[str, ...], offline: tuple[str, ...]) -> bytes:
    """``pusher_internal:watchlist_events`` as pusher-js reads it; empty lists are left out."""
    events = [{"name": name, "user_ids": list(ids)}
              for name, ids in (("online", online), ("offline", offline)) if ids]
    return encode_message(WATCHLIST_EVENTS, {"events": events})


def status_publication(app_id: str, user_id: str, online: bool) -> Publication:
    """What every node tells the sockets watching ``user_id`` when it goes online or offline."""
    event = {"name": "online" if online else "offline", "user_ids": [user_id]}
    return Publication(app_id, (), WATCHLIST_EVENTS, dumps({"events": [event]}),
                       user_id=user_id, kind=WATCHLIST)
