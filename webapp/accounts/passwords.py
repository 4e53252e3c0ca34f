"""Passwords: checking a sign-in, and changing a password (which signs the user out
everywhere)."""

from __future__ import annotations

from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..orders.models import User
from .sessions import SessionsEnded, end_sessions


@cache
def _unknown_user_hash() -> str:
    """A hash of no one's password, made like the real ones so checking it costs the same."""
    return generate_password_hash("no such user")


def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or None. An unknown email still checks a password
    hash, so the answer's timing does not reveal which emails have accounts."""
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    password_hash = user.password_hash if user is not None else _unknown_user_hash()
    if check_password_hash(password_hash, password) and user is not None:
        return user
    return None


def set_password(user: User, password: str) -> list[SessionsEnded]:
    """Change ``user``'s password, which ends every session (see :func:`end_sessions`)."""
    user.password_hash = generate_password_hash(password)
    return end_sessions(user)
