"""Who is calling: the session cookie (pages) or ``Authorization: Bearer <token>`` (API).

Cookie callers must also send the CSRF token on unsafe methods; bearer callers need not, since
a browser never attaches that header on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from flask import abort, request
from flask_login import current_user
from sqlalchemy.orm.interfaces import ORMOption
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import csrf, db, login_manager
from .models import Order, User
from .tokens import TokenError, token_claims

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user a session cookie names (``User.get_id``), if its epoch is still current."""
    user_id, _, epoch = session_id.partition(":")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None  # a cookie from before session epochs, or garbage: sign in again
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.session_epoch == int(epoch) else None


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


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def request_user() -> User | None:
    """The caller, or None. A bad bearer token is a 401; a cookie caller's POST needs CSRF."""
    header = request.headers.get("Authorization")
    if header is not None:
        token = bearer_token()
        if token is None:
            abort(401, description="Authorization header must be 'Bearer <token>'")
        try:
            user_id, epoch = token_claims(token)
        except TokenError as exc:
            abort(401, description=str(exc))
        user = db.session.get(User, user_id)
        if user is None:
            abort(401, description="token's user no longer exists; sign in again")
        if user.session_epoch != epoch:
            abort(401, description="token was revoked (signed out or password changed); "
                                   "sign in again at POST /api/login")
        return user
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


def visible_order(user: User, order_id: int, options: Sequence[ORMOption] = ()) -> Order:
    """The order if ``user`` may see it (its owner or an admin), loaded with ``options``; 404
    or 403 otherwise."""
    order = db.session.get(Order, order_id, options=options)
    if order is None:
        abort(404, description=f"order {order_id} does not exist")
    if not (user.is_admin or order.user_id == user.id):
        abort(403, description=f"order {order_id} is not yours")
    return order
