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


BODY = webhook_body()
GOOD = sign_webhook(SECRET, BODY)


@pytest.mark.parametrize(("given_key", "signature", "body"), [
    (KEY, GOOD, BODY),
    ("other-key", GOOD, BODY),
    (KEY, sign_webhook("other-secret", BODY), BODY),
    (KEY, GOOD, BODY + b" "),
    (KEY, GOOD.upper(), BODY),
    (KEY, GOOD[:-1], BODY),
    (KEY, "", BODY),
    ("", GOOD, BODY),
], ids=["right", "wrong key", "wrong secret", "changed body", "uppercase", "truncated",
        "no signature", "no key"])
def test_verify_webhook_agrees_with_the_sdk(given_key: str, signature: str, body: bytes):
    expected = oracle().validate_webhook(given_key, signature, body) is not None
    assert verify_webhook(KEY, SECRET, body, given_key, signature) is expected


def test_verify_webhook_refuses_missing_headers():
    assert verify_webhook(KEY, SECRET, BODY, None, GOOD) is False
    assert verify_webhook(KEY, SECRET, BODY, KEY, None) is False
