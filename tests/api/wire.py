"""Hand-signed requests for the HTTP API tests.

Raw requests sign their query with ``shared.signatures.sign_request`` so a test can break exactly
one check (WebSocket subscribers are ``tests.pusher_socket``).
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlencode

from shared.signatures import sign_request
from tests.servers import HOST, Broadcaster

TIMEOUT = 5.0


def signed_request(
    server: Broadcaster,
    method: str,
    path: str,
    body: bytes = b"",
    params: dict[str, str] | None = None,
    change: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """Send one request signed for ``server``'s app; ``change`` overrides params after signing;
    ``headers`` are sent as well."""
    query = sign_request(server.key, server.secret, method, path, params, body)
    query.update(change or {})
    conn = connection or http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    try:
        sent = {"Content-Type": "application/json"} if body else {}
        sent.update(headers or {})
        conn.request(method, f"{path}?{urlencode(query)}", body=body or None, headers=sent)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        if connection is None:
            conn.close()


def post_json(server: Broadcaster, path: str, value: object, **kwargs) -> tuple[int, dict]:
    return signed_request(server, "POST", path, json.dumps(value).encode(), **kwargs)
