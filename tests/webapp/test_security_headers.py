"""Every response carries nosniff, a referrer policy, no framing and a CSP; the pages keep to
that CSP (no inline script or handler, scripts only from this origin). The browser suite
(tests/clients/test_browser*.py) checks that Chromium logs no violation on the live pages."""

from __future__ import annotations

import re

import pytest

from tests.clients.webapp_api import ADMIN, ALICE
from tests.webapp.conftest import sign_in

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)  # onclick= and the like


def csp(answer) -> dict[str, list[str]]:
    policy = answer.headers["Content-Security-Policy"]
    return {name: values for name, *values in
            (part.split() for part in policy.split(";") if part.strip())}


def test_security_headers_on_pages_api_and_errors(client):
    for answer in (client.get("/login"), client.get("/api/orders"), client.get("/nope")):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert csp(answer)["frame-ancestors"] == ["'none'"]


def test_the_csp_allows_scripts_from_this_origin_only_and_the_broadcaster(app, client):
    policy = csp(client.get("/login"))
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["connect-src"] == [
        "'self'", f"ws://{app.config['REVERB_HOST']}:{app.config['REVERB_PORT']}"]


def test_a_tls_broadcaster_is_reached_by_wss(make_app):
    app = make_app(REVERB_SCHEME="https", REVERB_HOST="ws.example.com", REVERB_PORT=443)
    assert "wss://ws.example.com:443" in csp(app.test_client().get("/login"))["connect-src"]


@pytest.mark.parametrize("email, path", [(ADMIN, "/admin/orders"), (ADMIN, "/orders/6"),
                                         (ALICE, "/orders"), (None, "/login")])
def test_pages_have_no_inline_script(client, email, path):
    if email:
        sign_in(client, email)
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for attributes, body in SCRIPT.findall(html):
        if 'type="application/json"' in attributes:
            continue  # data, not a script: CSP does not apply
        assert body.strip() == "" and 'src="/' in attributes, attributes
    assert not INLINE_HANDLER.search(html)
