"""Webhook signing in shared/, checked against the official ``pusher`` SDK's ``validate_webhook``
(what an app built on Pusher runs on every webhook it receives)."""

from __future__ import annotations

import json
import time

import pusher
import pytest

from shared.signatures import sign_webhook, verify_webhook

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"


def oracle() -> pusher.Pusher:
    return pusher.Pusher(app_id="3", key=KEY, secret=SECRET)


def webhook_body(**extra: object) -> bytes:
    """A fresh body (the SDK refuses a ``time_ms`` more than 5 minutes off) in Pusher's format."""
    return json.dumps({"time_ms": int(time.time() * 1000), "events": [
        {"name": "channel_occupied", "channel": "private-user.2.orders"}], **extra}).encode()


def test_the_sdk_accepts_what_sign_webhook_signs():
    body = webhook_body()
    assert oracle().validate_webhook(KEY, sign_webhook(SECRET, body), body) == json.loads(body)


def test_sign_webhook_is_lowercase_hex_sha256():
    signature = sign_webhook(SECRET, webhook_body())
    assert len(signature) == 64 and signature == signature.lower()
    int(signature, 16)


def test_non_ascii_bodies_are_signed_as_their_bytes():
    body = webhook_body(note="Zoë ✓")
    assert oracle().validate_webhook(KEY, sign_webhook(SECRET, body), body) is not None


# Each case changes one thing of a right webhook: (key, signature, body) from a fresh body and
# its signature. Fresh per test: the SDK refuses a time_ms more than 5 minutes old, and a suite
# can take longer than that to reach this module's tests.
CASES = {
    "right": lambda body, good: (KEY, good, body),
    "wrong key": lambda body, good: ("other-key", good, body),
    "wrong secret": lambda body, good: (KEY, sign_webhook("other-secret", body), body),
    "changed body": lambda body, good: (KEY, good, body + b" "),
    "uppercase": lambda body, good: (KEY, good.upper(), body),
    "truncated": lambda body, good: (KEY, good[:-1], body),
    "no signature": lambda body, good: (KEY, "", body),
    "no key": lambda body, good: ("", good, body),
}


@pytest.mark.parametrize("case", CASES)
def test_verify_webhook_agrees_with_the_sdk(case: str):
    body = webhook_body()
    given_key, signature, body = CASES[case](body, sign_webhook(SECRET, body))
    expected = oracle().validate_webhook(given_key, signature, body) is not None
    assert verify_webhook(KEY, SECRET, body, given_key, signature) is expected


def test_verify_webhook_refuses_missing_headers():
    body = webhook_body()
    good = sign_webhook(SECRET, body)
    assert verify_webhook(KEY, SECRET, body, KEY, good) is True
    assert verify_webhook(KEY, SECRET, body, None, good) is False
    assert verify_webhook(KEY, SECRET, body, KEY, None) is False
