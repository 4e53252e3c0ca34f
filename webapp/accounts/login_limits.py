"""Failed sign-ins limited per account from one client address, and per client address
(Flask-Limiter), as OWASP's authentication guidance recommends.

Only failed attempts (401) count, so people who sign in often are never refused. Wrong passwords
for an account slow down the addresses that sent them, not the account: once either budget of an
address is spent, its next attempt is a 429 with ``Retry-After`` before any password is checked,
while the account's owner, from her own address, still signs in (a lock per account would let
anyone lock her out). Known and unknown emails count alike, and both check a password hash
(``passwords.authenticate``), so neither the answers nor their timing tell which emails have
accounts. The address is the connection's (``REMOTE_ADDR``): ``X-Forwarded-For`` counts only
behind Werkzeug's ``ProxyFix``. Counters live in Redis when ``REDIS_URL`` is set (shared by every
web process), in this process's memory otherwise. Two attempts in flight at once may both pass
the check: the bound is the budget plus the requests the server runs concurrently.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from shared.redis_modes import limits_storage, parse_redis_url

LOGIN_ENDPOINTS = ("api.login", "pages.login")


def _account() -> str:
    """The email the attempt is for, as ``authenticate`` looks it up ("" when there is none)."""
    if request.is_json or request.path.startswith("/api/"):
        body = request.get_json(force=True, silent=True)
        email = body.get("email") if isinstance(body, dict) else None
    else:
        email = request.form.get("email")
    return email.strip().lower() if isinstance(email, str) else ""


def _account_at_address() -> str:
    """The counter of this account from this address: the address and a digest of the email
    (a key of fixed size, however long the email sent)."""
    digest = hashlib.sha256(_account().encode(errors="surrogatepass")).hexdigest()
    return f"{get_remote_address()}/{digest}"


def _failed(response: Response) -> bool:
    return response.status_code == 401


def init_app(app: Flask) -> Limiter:
    """Limit the sign-in views of ``app`` (call after registering the blueprints)."""
    url = app.config["REDIS_URL"]
    storage_uri, storage_options = (limits_storage(parse_redis_url(url)) if url
                                    else ("memory://", {}))
    limiter = Limiter(
        get_remote_address, app=app, storage_uri=storage_uri, storage_options=storage_options,
        key_prefix="resound-login", in_memory_fallback_enabled=True, strategy="moving-window",
    )
    per_account = limiter.shared_limit(
        app.config["LOGIN_LIMIT_PER_ACCOUNT"], scope="login-account-address",
        key_func=_account_at_address, methods=["POST"], deduct_when=_failed,
        error_message="too many failed sign-ins for this account from your address; "
                      "wait and try again")
    per_address = limiter.shared_limit(
        app.config["LOGIN_LIMIT_PER_ADDRESS"], scope="login-address", key_func=get_remote_address,
        methods=["POST"], deduct_when=_failed,
        error_message="too many failed sign-ins from your address; wait and try again")
    for endpoint in LOGIN_ENDPOINTS:
        app.view_functions[endpoint] = per_address(per_account(app.view_functions[endpoint]))

    @limiter.request_filter
    def not_a_sign_in() -> bool:
        """Every other request skips the limiter's own check before it (its only limits are
        the sign-in views' above, which check in their wrappers): that check cost about 4 %
        of a transition's CPU."""
        return request.endpoint not in LOGIN_ENDPOINTS

    @app.after_request
    def retry_after(response: Response) -> Response:
        """A refused attempt (429, answered like any error) says when to try again."""
        if response.status_code == 429 and request.endpoint in LOGIN_ENDPOINTS:
            breached = limiter.current_limit
            wait = math.ceil(breached.reset_at - time.time()) if breached else 60
            response.headers["Retry-After"] = str(max(wait, 1))
        return response

    return limiter
