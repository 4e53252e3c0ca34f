"""The login limits hold across web processes on every Redis mode: one server, a Redis Cluster
(``redis+cluster://``) and a Sentinel setup (``redis+sentinel://``), all real processes.

Flask-Limiter falls back to each process's memory when its storage fails, so a URL it misread
would show here as a budget that is not shared."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.clients.webapp_api import PASSWORD
from tests.webapp.test_login_rate_limit import LIMITS, api_login


def spend_the_budget_across_two_processes(make_app, url: str) -> str:
    """Fail an account's sign-in 3 times from one address over two apps on ``url``; the 4th
    from that address, even with the right password, must be refused (the limit is per account
    from one address). Returns the digest the account's counter is kept under."""
    first = make_app(REDIS_URL=url, **LIMITS).test_client()
    second = make_app(REDIS_URL=url, **LIMITS).test_client()  # another web process
    # The servers live for the session: a fresh account and address (an address has 5 failures)
    email = f"{uuid.uuid4().hex}@example.com"
    address = "10." + ".".join(str(byte) for byte in uuid.uuid4().bytes[:3])
    for client in (first, second, first):
        assert api_login(client, email, address=address).status_code == 401
    refused = api_login(second, email, PASSWORD, address=address)
    assert refused.status_code == 429
    assert "this account" in refused.json["error"]
    return hashlib.sha256(email.encode()).hexdigest()


def test_two_web_processes_share_the_login_budget_on_each_redis_mode(make_app, redis_mode_url):
    spend_the_budget_across_two_processes(make_app, redis_mode_url)


@pytest.mark.parametrize("db", [0, 3])
def test_the_budget_lives_in_the_sentinel_masters_database(make_app, redis_sentinel_setup, db):
    """``/master/db``: Flask-Limiter alone would look for a master named ``resound3``."""
    url = f"{redis_sentinel_setup.url}/{db}"
    digest = spend_the_budget_across_two_processes(make_app, url)
    with redis_sentinel_setup.master().client(db) as master:
        assert any(digest in key for key in master.scan_iter("*resound-login/*"))
