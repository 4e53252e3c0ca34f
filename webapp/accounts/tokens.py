"""API tokens: the user id and session epoch signed with itsdangerous, valid for
API_TOKEN_MAX_AGE seconds and until the user's session epoch moves on (sign-out, new password)."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "resound.api-token"


class TokenError(ValueError):
    """A bearer token that cannot be used; the message says why."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue_token(user_id: int, session_epoch: int) -> str:
    return _serializer().dumps({"uid": user_id, "epoch": session_epoch})


def token_claims(token: str) -> tuple[int, int]:
    """The user id and session epoch inside ``token``; :class:`TokenError` when it is forged,
    garbled or expired."""
    try:
        payload = _serializer().loads(token, max_age=current_app.config["API_TOKEN_MAX_AGE"])
    except SignatureExpired:
        raise TokenError("token expired; sign in again at POST /api/login") from None
    except BadSignature:
        raise TokenError("token is not valid; sign in at POST /api/login") from None
    if not (isinstance(payload, dict) and isinstance(payload.get("uid"), int)
            and isinstance(payload.get("epoch"), int)):
        raise TokenError("token is not valid; sign in at POST /api/login")
    return payload["uid"], payload["epoch"]
