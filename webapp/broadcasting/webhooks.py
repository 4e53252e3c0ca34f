"""``POST /broadcasting/webhooks``: the broadcaster's webhooks (Pusher's format) feed the admins'
"online now" and "viewing" view (:mod:`webapp.broadcasting.presence`).

The body is ``{"time_ms": ..., "events": [...]}``, signed in ``X-Pusher-Signature`` with the app
secret and named by ``X-Pusher-Key``; anything else is refused with 401 before the body is read
as JSON. No session, so no CSRF token: the signature is the authentication.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from shared.signatures import verify_webhook

from ..accounts.callers import require_admin
from ..extensions import csrf, db
from .outbox import enqueue
from .presence import ActivityChanged, fact_of, record, snapshot

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)
KEY_HEADER = "X-Pusher-Key"
SIGNATURE_HEADER = "X-Pusher-Signature"


def _signed_body() -> dict[str, Any]:
    body = request.get_data(cache=False)
    config = current_app.config
    if not verify_webhook(config["REVERB_APP_KEY"], config["REVERB_APP_SECRET"], body,
                          request.headers.get(KEY_HEADER), request.headers.get(SIGNATURE_HEADER)):
        log.warning("refused a webhook from %s: %s or %s does not match this app",
                    request.remote_addr, KEY_HEADER, SIGNATURE_HEADER)
        abort(401, description=f"{KEY_HEADER} must be this app's key and {SIGNATURE_HEADER} the "
                               "hex HMAC-SHA256 of the body with its secret")
    try:
        payload = json.loads(body)
    except ValueError:
        abort(400, description="the body must be JSON: {\"time_ms\": ..., \"events\": [...]}")
    time_ms, events = (payload.get("time_ms"), payload.get("events")) if isinstance(
        payload, dict) else (None, None)
    if not isinstance(time_ms, int) or isinstance(time_ms, bool) or not isinstance(events, list):
        abort(400, description="the body must be {\"time_ms\": <integer>, \"events\": [...]}")
    if not all(isinstance(event, dict) for event in events):
        abort(400, description="each of events must be an object with name and channel")
    return payload


@bp.post("/broadcasting/webhooks")
@csrf.exempt
def receive() -> ResponseReturnValue:
    payload = _signed_body()
    facts = [fact for fact in map(fact_of, payload["events"]) if fact is not None]
    changed = record(facts, payload["time_ms"])
    if changed:
        enqueue(ActivityChanged(snapshot()))
    db.session.commit()
    return jsonify(events=len(payload["events"]), changed=changed)


@bp.get("/api/activity")
def activity() -> ResponseReturnValue:
    """The admins' view as the dashboard shows it (and reloads after a lost connection)."""
    require_admin()
    return jsonify(snapshot())
