"""Reverb's socket-message rate limit (``rate_limiting``) in the pure core: every message counts."""

from broadcaster.config import MessageRateLimit
from tests.broadcaster.recording import Clock, app_state, open_session

PING = '{"event": "pusher:ping", "data": {}}'


def limited(terminate: bool = False):
    clock = Clock()
    app = app_state(message_rate_limit=MessageRateLimit(3, 10.0, terminate))
    session, client = open_session(app, "1.1", clock)
    return session, client, clock


def test_past_max_attempts_in_a_window_messages_get_4301_and_are_dropped():
    session, client, clock = limited()
    for _ in range(4):
        session.handle_text(PING)
    messages = client.take()
    assert [m["event"] for m in messages] == ["pusher:pong"] * 3 + ["pusher:error"]
    assert messages[3]["data"]["code"] == 4301
    assert "at most 3 messages per 10 s" in messages[3]["data"]["message"]
    assert client.closed is None


def test_the_window_reopens_after_decay_seconds():
    session, client, clock = limited()
    for _ in range(3):
        session.handle_text(PING)
    clock.now += 9.9
    session.handle_text(PING)
    assert client.take()[-1]["event"] == "pusher:error"
    clock.now += 0.1  # 10 s after the window's first message
    session.handle_text(PING)
    assert client.take() == [{"event": "pusher:pong", "data": "{}"}]


def test_terminate_on_limit_closes_the_socket_with_4301():
    session, client, _ = limited(terminate=True)
    for _ in range(4):
        session.handle_text(PING)
    assert client.closed is not None and client.closed[0] == 4301


def test_subscriptions_count_too_and_no_limit_by_default():
    session, client, _ = limited()
    for name in ("a", "b", "c", "d"):
        session.handle_text(f'{{"event": "pusher:subscribe", "data": {{"channel": "{name}"}}}}')
    assert set(session.channels) == {"a", "b", "c"}
    unlimited, plain = open_session(app_state(), "1.2")
    for _ in range(500):
        unlimited.handle_text(PING)
    assert {m["event"] for m in plain.take()} == {"pusher:pong"}
