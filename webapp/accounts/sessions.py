"""Ending a user's sessions: every session cookie and API token carries the user's session
epoch, so bumping it voids them all; the event it returns asks the broadcaster to close the
user's live connections too (written to the outbox by the caller's unit of work)."""

from __future__ import annotations

from dataclasses import dataclass

from ..orders.models import User


@dataclass(frozen=True, slots=True)
class SessionsEnded:
    """Every session of ``user_id`` ended: its live connections must close as well."""

    user_id: int


def end_sessions(user: User) -> list[SessionsEnded]:
    """Void every session cookie and API token of ``user`` issued so far (when the transaction
    commits); returns the event that closes the user's live connections (none for a user not
    yet saved: it has none)."""
    user.session_epoch = (user.session_epoch or 0) + 1
    return [SessionsEnded(user.id)] if user.id is not None else []
