"""Webhooks as the broadcaster will send them (Pusher's format), posted over real HTTP to a
running webapp and signed with the official ``pusher`` SDK's own primitive, not ours."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from pusher.signature import sign

from tests.servers import APP_KEY, APP_SECRET

PATH = "/broadcasting/webhooks"


def now_ms() -> int:
    return int(time.time() * 1000)


def body_of(events: list[dict[str, Any]], time_ms: int) -> bytes:
    return json.dumps({"time_ms": time_ms, "events": events}).encode()


def post_body(base_url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST ``body`` with exactly ``headers``: the status and the JSON answer."""
    request = urllib.request.Request(base_url + PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_webhook(base_url: str, events: list[dict[str, Any]], time_ms: int | None = None,
                 ) -> dict[str, Any]:
    """Post ``events`` signed with the test app's key and secret; assert 200; its answer."""
    body = body_of(events, now_ms() if time_ms is None else time_ms)
    status, answer = post_body(base_url, body, {
        "X-Pusher-Key": APP_KEY, "X-Pusher-Signature": sign(APP_SECRET, body.decode())})
    assert status == 200, (status, answer)
    return answer


def occupied(channel: str) -> dict[str, str]:
    return {"name": "channel_occupied", "channel": channel}


def vacated(channel: str) -> dict[str, str]:
    return {"name": "channel_vacated", "channel": channel}


def member_added(channel: str, user_id: int) -> dict[str, str]:
    return {"name": "member_added", "channel": channel, "user_id": str(user_id)}


def member_removed(channel: str, user_id: int) -> dict[str, str]:
    return {"name": "member_removed", "channel": channel, "user_id": str(user_id)}
