"""Client options, written the way a Laravel app configures Echo and pusher-js for Reverb."""

from __future__ import annotations

from typing import Any

from tests.servers import HOST, Broadcaster


def reverb_options(server: Broadcaster, **extra: Any) -> dict[str, Any]:
    """``new Echo({...})`` for Reverb, as a Laravel app's resources/js/echo.js writes it."""
    return {
        "broadcaster": "reverb",
        "key": server.key,
        "wsHost": HOST,
        "wsPort": server.port,
        "forceTLS": False,
        "enabledTransports": ["ws"],
        **extra,
    }


def pusher_options(server: Broadcaster, auth_endpoint: str, headers: dict[str, str]) -> dict:
    """``new Pusher(key, {...})`` with what Echo's Reverb connector passes (``cluster: ''``)."""
    return {
        "cluster": "",
        "wsHost": HOST,
        "wsPort": server.port,
        "forceTLS": False,
        "enabledTransports": ["ws"],
        "authEndpoint": auth_endpoint,
        "auth": {"headers": headers},
    }
