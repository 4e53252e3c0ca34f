"""Failed sign-ins are limited per account from one address and per address: then 429 with
Retry-After, for the addresses that failed only; the account's owner still signs in from hers.

Known and unknown emails take the same path: each failure checks a password hash and counts,
and a refused attempt checks none.
"""

from __future__ import annotations

import pytest
import werkzeug.security

import webapp.accounts.passwords
from tests.api.redis_server import redis_server
from tests.clients.webapp_api import ALICE, BOB, PASSWORD
from tests.webapp.conftest import csrf_token
from webapp.accounts.passwords import set_password
from webapp.extensions import db
from webapp.orders.models import User

UNKNOWN = "nobody@example.com"
ATTACKER, OWNER = "10.0.0.66", "10.0.0.7"
LIMITS = {"LOGIN_LIMIT_PER_ACCOUNT": "3 per hour", "LOGIN_LIMIT_PER_ADDRESS": "5 per hour"}


@pytest.fixture
def limited(make_app):
    return make_app(**LIMITS).test_client()


@pytest.fixture
def hash_checks(monkeypatch) -> list[str]:
    """Every password hash check (the real one runs), by the hash's method."""
    calls: list[str] = []

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password_hash.split("$", 1)[0])
        return werkzeug.security.check_password_hash(password_hash, password)

    monkeypatch.setattr(webapp.accounts.passwords, "check_password_hash", counting)
    return calls


def api_login(client, email: str, password: str = "wrong", address: str = "127.0.0.1"):
    return client.post("/api/login", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


@pytest.mark.parametrize("email", [ALICE, UNKNOWN])
def test_failures_for_an_account_get_the_address_429_with_retry_after(limited, hash_checks,
                                                                       email):
    for _ in range(3):
        assert api_login(limited, email, address=ATTACKER).status_code == 401
    assert len(hash_checks) == 3
    refused = api_login(limited, email, address=ATTACKER)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3601  # the window's end, rounded up
    assert "this account from your address" in refused.json["error"]
    assert len(hash_checks) == 3  # refused before any password is checked
    # The right password from the attacker's address waits too.
    assert api_login(limited, email, PASSWORD, address=ATTACKER).status_code == 429


def test_the_owner_signs_in_from_her_address_while_another_address_is_refused(limited):
    for _ in range(3):
        assert api_login(limited, ALICE, address=ATTACKER).status_code == 401
    assert api_login(limited, ALICE, address=ATTACKER).status_code == 429
    assert api_login(limited, ALICE, PASSWORD, address=OWNER).status_code == 200
    # Her own typos have their own budget, which the attacker's failures did not spend.
    assert [api_login(limited, ALICE, address=OWNER).status_code for _ in range(4)] == [
        401, 401, 401, 429]


@pytest.mark.parametrize("variant", [ALICE.upper(), f"  {ALICE}\t", ALICE.capitalize()])
def test_variants_of_an_email_share_its_budget(limited, variant):
    for email in (ALICE, variant, ALICE):
        assert api_login(limited, email, address=ATTACKER).status_code == 401
    assert api_login(limited, variant, address=ATTACKER).status_code == 429


def test_x_forwarded_for_does_not_give_a_new_budget(limited):
    for n in range(3):
        answer = limited.post("/api/login", json={"email": ALICE, "password": "wrong"},
                              headers={"X-Forwarded-For": f"10.7.0.{n}"},
                              environ_base={"REMOTE_ADDR": ATTACKER})
        assert answer.status_code == 401
    again = limited.post("/api/login", json={"email": ALICE, "password": "wrong"},
                         headers={"X-Forwarded-For": "10.7.0.99"},
                         environ_base={"REMOTE_ADDR": ATTACKER})
    assert again.status_code == 429


def test_known_and_unknown_accounts_take_the_same_path(limited, hash_checks):
    with limited.application.app_context():  # a hash made as the app makes them (the seeded
        alice = db.session.scalar(db.select(User).where(User.email == ALICE))  # ones are cheap)
        set_password(alice, PASSWORD)
        db.session.commit()
    answers = {}
    for n, email in enumerate((ALICE, UNKNOWN)):
        answers[email] = [api_login(limited, email, address=f"10.1.{n}.1").status_code
                          for _ in range(4)]
    assert answers[ALICE] == answers[UNKNOWN] == [401, 401, 401, 429]
    assert len(hash_checks) == 6
    assert len(set(hash_checks)) == 1  # the unknown email's dummy hash is made like real ones


def test_an_address_gets_429_across_accounts(limited):
    emails = [ALICE, BOB, UNKNOWN, "a@example.com", "b@example.com"]
    assert [api_login(limited, email).status_code for email in emails] == [401] * 5
    refused = api_login(limited, "c@example.com")
    assert refused.status_code == 429
    assert refused.json["error"].startswith("too many failed sign-ins from your address")
    assert "Retry-After" in refused.headers
    assert api_login(limited, "c@example.com", address="10.9.9.9").status_code == 401


def test_successful_sign_ins_do_not_count(limited):
    for _ in range(8):
        assert api_login(limited, ALICE, PASSWORD).status_code == 200


def test_the_sign_in_page_shares_the_budget(limited):
    for _ in range(3):
        assert api_login(limited, BOB).status_code == 401
    page = limited.post("/login", data={"email": BOB, "password": "wrong",
                                        "csrf_token": csrf_token(limited)})
    assert page.status_code == 429
    assert "Retry-After" in page.headers


def test_counters_live_in_redis_when_redis_url_is_set(make_app):
    with redis_server() as url:
        first = make_app(REDIS_URL=url, **LIMITS).test_client()
        second = make_app(REDIS_URL=url, **LIMITS).test_client()  # another web process
        for client in (first, second, first):
            assert api_login(client, ALICE).status_code == 401
        assert api_login(second, ALICE).status_code == 429
        assert api_login(first, ALICE, PASSWORD, address=OWNER).status_code == 200
