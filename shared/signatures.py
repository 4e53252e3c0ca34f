"""Pusher signatures: channel authorization, user sign-in, signed HTTP API requests, webhooks.

One implementation serves the broadcaster (verifying) and the Flask app (signing), so both agree
byte for byte. Every comparison is constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

AUTH_VERSION = "1.0"
MAX_TIMESTAMP_SKEW = 600


def hmac_sha256_hex(secret: str, message: str) -> str:
    """Hex HMAC-SHA256 of ``message`` keyed with ``secret`` (both UTF-8)."""
    return hmac.digest(secret.encode(), message.encode(), "sha256").hex()


def channel_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """The string Pusher signs to authorize ``socket_id`` on ``channel``."""
    if channel_data is None:
        return f"{socket_id}:{channel}"
    return f"{socket_id}:{channel}:{channel_data}"


def user_string(socket_id: str, user_data: str) -> str:
    """The string Pusher signs for user sign-in (``pusher:signin``)."""
    return f"{socket_id}::user::{user_data}"


def sign_channel(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    """``key:signature`` authorizing a socket on a private, encrypted or presence channel.

    For presence, ``channel_data`` is signed exactly as the client will send it.
    """
    return f"{key}:{hmac_sha256_hex(secret, channel_string(socket_id, channel, channel_data))}"


def sign_user(key: str, secret: str, socket_id: str, user_data: str) -> str:
    """``key:signature`` for ``pusher:signin``."""
    return f"{key}:{hmac_sha256_hex(secret, user_string(socket_id, user_data))}"


def _auth_matches(auth: object, key: str, secret: str, message: str) -> bool:
    if not isinstance(auth, str):
        return False
    given_key, sep, signature = auth.partition(":")
    expected = hmac_sha256_hex(secret, message)
    key_ok = hmac.compare_digest(given_key.encode(), key.encode())
    sig_ok = hmac.compare_digest(signature.encode(), expected.encode())
    return bool(sep) and key_ok and sig_ok


def verify_channel(
    auth: object,
    key: str,
    secret: str,
    socket_id: str,
    channel: str,
    channel_data: str | None = None,
) -> bool:
    """True when ``auth`` is the ``key:signature`` that :func:`sign_channel` would make."""
    return _auth_matches(auth, key, secret, channel_string(socket_id, channel, channel_data))


def verify_user(auth: object, key: str, secret: str, socket_id: str, user_data: str) -> bool:
    """True when ``auth`` is the ``key:signature`` that :func:`sign_user` would make."""
    return _auth_matches(auth, key, secret, user_string(socket_id, user_data))


# --- HTTP API requests -------------------------------------------------------------------------


def body_md5(body: bytes) -> str:
    """Hex MD5 of a request body, as ``body_md5`` carries it."""
    return hashlib.md5(body).hexdigest()


def request_string(method: str, path: str, params: Mapping[str, str]) -> str:
    """``METHOD\\nPATH\\nsorted k=v&...`` over every parameter except ``auth_signature``.

    Keys are lower-cased and sorted; values are used as they are, not URL-encoded.
    """
    pairs = sorted((k.lower(), v) for k, v in params.items() if k.lower() != "auth_signature")
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return f"{method.upper()}\n{path}\n{query}"


def sign_request(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str] | None = None,
    body: bytes = b"",
    timestamp: int | None = None,
) -> dict[str, str]:
    """Every query parameter of a signed request to ``path``, ``auth_signature`` included."""
    signed = dict(params or {})
    signed["auth_key"] = key
    signed["auth_timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    signed["auth_version"] = AUTH_VERSION
    if body:
        signed["body_md5"] = body_md5(body)
    signed["auth_signature"] = hmac_sha256_hex(secret, request_string(method, path, signed))
    return signed


class RequestAuthError(Exception):
    """A signed request failed a check; the message says which, for the 401 body."""


def verify_request(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Check a signed HTTP API request; raise :class:`RequestAuthError` naming the failed check."""
    _check_fields(key, params, bool(body), now)
    verify_body_md5(params, body)
    _check_signature(secret, method, path, params)


def verify_request_head(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    has_body: bool,
    now: float | None = None,
) -> None:
    """Every check of :func:`verify_request` that needs no body: key, version, timestamp,
    ``body_md5`` given when ``has_body``, and the signature (which covers ``body_md5``). Once
    the body is in, :func:`verify_body_md5` completes the check."""
    _check_fields(key, params, has_body, now)
    _check_signature(secret, method, path, params)


def verify_body_md5(params: Mapping[str, str], body: bytes) -> None:
    """Check that ``body`` is the one whose MD5 the request's ``body_md5`` carries."""
    if body or "body_md5" in params:
        given_md5 = params.get("body_md5", "")
        if not given_md5:
            raise RequestAuthError("body_md5 is missing; send the hex MD5 of the request body")
        if not hmac.compare_digest(given_md5.encode(), body_md5(body).encode()):
            raise RequestAuthError("body_md5 does not match the request body")


def _check_fields(key: str, params: Mapping[str, str], has_body: bool,
                  now: float | None) -> None:
    if params.get("auth_key") != key:
        raise RequestAuthError("auth_key does not match the app's key")
    if params.get("auth_version", AUTH_VERSION) != AUTH_VERSION:
        raise RequestAuthError(f"auth_version must be {AUTH_VERSION}")
    try:
        timestamp = int(params.get("auth_timestamp", ""))
    except ValueError:
        raise RequestAuthError("auth_timestamp is missing or not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > MAX_TIMESTAMP_SKEW:
        raise RequestAuthError(
            f"auth_timestamp is more than {MAX_TIMESTAMP_SKEW} s from the server's clock"
        )
    if has_body and not params.get("body_md5"):
        raise RequestAuthError("body_md5 is missing; send the hex MD5 of the request body")


def _check_signature(secret: str, method: str, path: str, params: Mapping[str, str]) -> None:
    signature = params.get("auth_signature", "")
    expected = hmac_sha256_hex(secret, request_string(method, path, params))
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise RequestAuthError("auth_signature does not match (sign METHOD\\nPATH\\nsorted query)")


# --- Webhooks ----------------------------------------------------------------------------------


def sign_webhook(secret: str, body: bytes) -> str:
    """``X-Pusher-Signature``: lowercase hex HMAC-SHA256 of the raw body, keyed with the secret."""
    return hmac.digest(secret.encode(), body, "sha256").hex()


def verify_webhook(key: str, secret: str, body: bytes, given_key: object,
                   given_signature: object) -> bool:
    """True when ``given_key`` (``X-Pusher-Key``) is the app's key and ``given_signature``
    (``X-Pusher-Signature``) is :func:`sign_webhook` of ``body``; both compared in constant time."""
    if not isinstance(given_key, str) or not isinstance(given_signature, str):
        return False
    key_ok = hmac.compare_digest(given_key.encode(), key.encode())
    sig_ok = hmac.compare_digest(given_signature.encode(), sign_webhook(secret, body).encode())
    return key_ok and sig_ok
