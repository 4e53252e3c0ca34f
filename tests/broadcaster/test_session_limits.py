"""What one socket may hold in the core: a capped number of channels, and a close that does not
grow with the square of its presence channels."""

import json

from broadcaster.protocol.messages import SUBSCRIPTION_LIMIT
from broadcaster.protocol.session import Session
from broadcaster.protocol.state import Channel
from shared.signatures import sign_channel
from tests.broadcaster.recording import Clock, RecordingClient, app_state, local_state


def capped_session(app, socket_id, max_subscriptions):
    """An open session with ``max_subscriptions``, on the app's in-memory cluster state."""
    state = local_state(app)
    client = RecordingClient(socket_id)

    def ask(request):
        state.submit(request, lambda answer: session.answer(request, answer))

    session = Session(app, client, Clock(), lambda publication: None, ask,
                      max_subscriptions=max_subscriptions)
    session.open()
    client.take()
    return session, client


def subscribe(session, channel):
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))


def join_presence(session, channel, user_id):
    channel_data = json.dumps({"user_id": user_id})
    auth = sign_channel("key", "secret", session.socket_id, channel, channel_data)
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {
        "channel": channel, "auth": auth, "channel_data": channel_data}}))


def test_a_subscription_past_the_cap_is_refused_and_the_socket_stays_open():
    app = app_state()
    session, client = capped_session(app, "1.1", max_subscriptions=3)
    for name in ("a", "b", "c"):
        subscribe(session, name)
    assert [m["event"] for m in client.take()] == ["pusher_internal:subscription_succeeded"] * 3
    subscribe(session, "d")
    [refusal] = client.take()
    assert refusal["event"] == "pusher:error"
    assert refusal["data"]["code"] == SUBSCRIPTION_LIMIT
    assert "3 channels at most" in refusal["data"]["message"]
    assert "d" not in app.channels and client.closed is None
    subscribe(session, "a")  # already on it: not a new channel, still fine
    session.handle_text(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "b"}}))
    subscribe(session, "d")
    assert [m["event"] for m in client.take()] == ["pusher_internal:subscription_succeeded"] * 2
    assert set(session.channels) == {"a", "c", "d"}


def test_closing_a_socket_on_many_presence_channels_is_linear(monkeypatch):
    """Each leave used to scan every remaining channel for the user (quadratic in channels)."""
    app = app_state(max_presence_members=10)
    session, client = capped_session(app, "1.1", max_subscriptions=10_000)
    count = 400
    for index in range(count):
        join_presence(session, f"presence-{index}", f"user-{index}")
    assert len(session.channels) == count
    lookups = []
    original = Channel.user_of
    monkeypatch.setattr(Channel, "user_of", lambda self, socket_id: lookups.append(1) or
                        original(self, socket_id))
    session.close()
    assert len(lookups) <= count, f"{len(lookups)} user lookups to close {count} channels"
    assert not app.users and not app.channels and app.connection_count == 0


def test_a_user_stays_while_one_of_its_presence_channels_remains():
    app = app_state()
    session, client = capped_session(app, "1.1", max_subscriptions=10)
    join_presence(session, "presence-a", "ann")
    join_presence(session, "presence-b", "ann")
    session.handle_text(json.dumps({"event": "pusher:unsubscribe",
                                    "data": {"channel": "presence-a"}}))
    assert "ann" in app.users
    session.handle_text(json.dumps({"event": "pusher:unsubscribe",
                                    "data": {"channel": "presence-b"}}))
    assert "ann" not in app.users
