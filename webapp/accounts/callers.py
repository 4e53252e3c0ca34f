"""Who is calling: the session cookie (pages) or ``Authorization: Bearer <token>`` (API).

Cookie callers must also send the CSRF token on unsafe methods; bearer callers need not, since
a browser never attaches that header on its own.
"""

from __future__ import annotations

from typing import TypeVar

from flask import abort, request
from flask_login import current_user
from sqlalchemy import bindparam, select

from ..extensions import csrf, db, login_manager
from ..orders.models import User
from ..orders.records import Person
from .tokens import TokenError, token_claims

# A caller loaded as an ORM object, or as a record with the order (:mod:`webapp.web.access`).
UserT = TypeVar("UserT", User, Person)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Built once: building the query on each call (what ``Session.get`` does) cost a third of
# loading the caller, on every request.
_USER = select(User).where(User.id == bindparam("id"))


def _user(user_id: int) -> User | None:
    return db.session.execute(_USER, {"id": user_id}).scalar_one_or_none()


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user a session cookie names (``User.get_id``), if its epoch is still current."""
    user_id, _, epoch = session_id.partition(":")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None  # a cookie from before session epochs, or garbage: sign in again
    user = _user(int(user_id))
    return user if user is not None and user.session_epoch == int(epoch) else None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def token_caller() -> tuple[int, int] | None:
    """The user id and session epoch of the request's bearer token, or None when it sends no
    ``Authorization`` header; a bad header or token is a 401."""
    if request.headers.get("Authorization") is None:
        return None
    token = bearer_token()
    if token is None:
        abort(401, description="Authorization header must be 'Bearer <token>'")
    try:
        return token_claims(token)
    except TokenError as exc:
        abort(401, description=str(exc))


def token_user(user: UserT | None, epoch: int) -> UserT:
    """The user a token names, loaded as ``user``: a 401 when she no longer exists or the
    token's ``epoch`` has passed."""
    if user is None:
        abort(401, description="token's user no longer exists; sign in again")
    if user.session_epoch != epoch:
        abort(401, description="token was revoked (signed out or password changed); "
                               "sign in again at POST /api/login")
    return user


def request_user() -> User | None:
    """The caller, or None. A bad bearer token is a 401; a cookie caller's POST needs CSRF."""
    claims = token_caller()
    if claims is not None:
        user_id, epoch = claims
        return token_user(_user(user_id), epoch)
    if not current_user.is_authenticated:
        return None
    if request.method not in SAFE_METHODS:
        csrf.protect()
    return current_user._get_current_object()


def require_user() -> User:
    user = request_user()
    if user is None:
        abort(401, description="sign in first: POST /api/login, then send "
                               "'Authorization: Bearer <token>'")
    return user


def require_admin() -> User:
    user = require_user()
    if not user.is_admin:
        abort(403, description="only admins may do this")
    return user
