"""Security headers on every response (flask-talisman): nosniff, a referrer policy, no framing,
and a Content-Security-Policy the pages satisfy. HTML pages also get ``Cache-Control: no-store``,
so Back and Forward fetch them again rather than showing a stale copy.

The pages run only scripts from this origin (``static/`` and ``/vendor``); the ``echo-config``
block is JSON data, which CSP does not treat as a script. The one other origin they reach is the
broadcaster's WebSocket, named from the ``REVERB_*`` settings. HTTPS redirects and HSTS belong to
the TLS-terminating proxy, so they are off here (HSTS is still sent on requests that came by
HTTPS).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from flask_talisman import Talisman

SELF = "'self'"


def content_security_policy(config: dict[str, Any]) -> dict[str, str | list[str]]:
    """The CSP for ``config``: this origin, plus the broadcaster for connections."""
    secure = config["REVERB_SCHEME"] == "https"
    authority = f"{config['REVERB_HOST']}:{config['REVERB_PORT']}"
    return {
        "default-src": SELF,
        "script-src": SELF,
        "style-src": SELF,
        "img-src": [SELF, "data:"],  # the page icon is an empty data: URL
        "connect-src": [SELF, f"{'wss' if secure else 'ws'}://{authority}"],
        "form-action": SELF,
        "base-uri": SELF,
        "object-src": "'none'",
        "frame-ancestors": "'none'",
    }


def no_store_html(response: Response) -> Response:
    """``Cache-Control: no-store`` on HTML: a page's data is live, a cached copy is stale.
    Scripts, styles and /vendor keep their caching."""
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.after_request(no_store_html)
    Talisman(
        app,
        force_https=False,
        session_cookie_secure=app.config.get("SESSION_COOKIE_SECURE", False),
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        content_security_policy=content_security_policy(app.config),
    )
