"""Webhook settings, signatures and the bounded inbox, without a server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pusher
import pytest

from broadcaster.config import ConfigError, Webhook, load_apps_file
from broadcaster.webhooks.base import WebhookEvent, webhook_body
from broadcaster.webhooks.local import LocalWebhookQueue
from shared.signatures import sign_webhook, verify_webhook


def test_the_apps_file_takes_soketis_webhooks(tmp_path: Path) -> None:
    path = tmp_path / "apps.json"
    path.write_text(json.dumps({"apps": [{
        "id": "1", "key": "k", "secret": "s", "webhook_batching": True,
        "webhooks": [{"url": "https://example.com/hook", "event_types": ["channel_vacated"],
                      "filter": {"channel_name_starts_with": "private-",
                                 "channel_name_ends_with": ".orders"},
                      "headers": {"X-Tenant": "shop"}}]}]}))
    app, = load_apps_file(str(path))
    assert app.webhook_batching is True
    assert app.webhooks == (Webhook("https://example.com/hook", ("channel_vacated",),
                                    "private-", ".orders", (("X-Tenant", "shop"),)),)
    webhook = app.webhooks[0]
    assert webhook.wants("channel_vacated", "private-user.1.orders")
    assert not webhook.wants("channel_vacated", "private-user.1.profile")
    assert not webhook.wants("channel_occupied", "private-user.1.orders")


def test_an_unknown_event_type_in_the_apps_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "apps.json"
    path.write_text(json.dumps({"apps": [{"id": "1", "key": "k", "secret": "s", "webhooks": [
        {"url": "https://example.com/hook", "event_types": ["subscription_counts"]}]}]}))
    with pytest.raises(ConfigError, match="unknown event type 'subscription_counts'"):
        load_apps_file(str(path))


def test_a_signed_body_is_what_the_pusher_sdk_validates() -> None:
    now_ms = int(time.time() * 1000)  # the SDK refuses a webhook more than 5 minutes old
    body = webhook_body([WebhookEvent("1", "member_added", "presence-x", 5, user_id="7")],
                        now_ms)
    signature = sign_webhook("s", body)
    sdk = pusher.Pusher(app_id="1", key="k", secret="s")
    webhook = sdk.validate_webhook("k", signature, body.decode())
    assert webhook == {"time_ms": now_ms, "events": [
        {"name": "member_added", "channel": "presence-x", "user_id": "7"}]}
    assert verify_webhook("k", "s", body, "k", signature)
    assert not verify_webhook("k", "other", body, "k", signature)
    assert not verify_webhook("k", "s", body, "k", None)


def test_a_full_inbox_drops_and_counts() -> None:
    queue = LocalWebhookQueue(max_pending=2)
    queue.want("1", {"cache_miss"})
    for _ in range(3):
        queue.put(WebhookEvent("1", "cache_miss", "cache-x", 1))
    queue.put(WebhookEvent("1", "client_event", "private-x", 1))  # not wanted: not queued
    assert len(queue.inbox) == 2
    assert queue.dropped == 1


def test_a_full_delivery_queue_refuses_the_next_event() -> None:
    async def fill() -> tuple[list[bool], list[WebhookEvent]]:
        queue = LocalWebhookQueue(max_pending=2)
        pushed = [await queue.push(WebhookEvent("1", "cache_miss", channel, 1))
                  for channel in ("a", "b", "c")]
        return pushed, await queue.pop(10)

    pushed, popped = asyncio.run(fill())
    assert pushed == [True, True, False]  # the queue counts it dropped
    assert [event.channel for event in popped] == ["a", "b"]
