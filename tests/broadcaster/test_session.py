"""The per-socket protocol core against app state, with recording clients (pure, fast)."""

import json

from broadcaster.config import AppConfig
from broadcaster.protocol.state import AppState
from shared.payloads import encode_message
from shared.signatures import sign_channel, sign_user
from tests.broadcaster.recording import (
    Clock,
    RecordingClient,
    app_state,
    members,
    new_session,
    open_session,
)
from tests.pusher_socket import error


def sub(channel, auth=None, channel_data=None):
    data = {"channel": channel}
    if auth is not None:
        data["auth"] = auth
    if channel_data is not None:
        data["channel_data"] = channel_data
    return json.dumps({"event": "pusher:subscribe", "data": data})


def presence_sub(session, channel, user_id, info=None):
    channel_data = json.dumps({"user_id": user_id, "user_info": info})
    auth = sign_channel("key", "secret", session.socket_id, channel, channel_data)
    session.handle_text(sub(channel, auth, channel_data))


def test_open_registers_and_greets_with_socket_id_and_timeout():
    app = app_state(activity_timeout=12)
    client = RecordingClient("1.2")
    new_session(app, client).open()
    [greeting] = client.messages
    assert greeting["event"] == "pusher:connection_established"
    assert json.loads(greeting["data"]) == {"socket_id": "1.2", "activity_timeout": 12}
    assert app.connection_count == 1


def test_ping_gets_pong():
    session, client = open_session(app_state(), "1.1")
    session.handle_text('{"event":"pusher:ping","data":{}}')
    assert client.take() == [{"event": "pusher:pong", "data": "{}"}]


def test_public_subscribe_and_unsubscribe():
    app = app_state()
    session, client = open_session(app, "1.1")
    session.handle_text(sub("news"))
    assert client.take() == [{
        "event": "pusher_internal:subscription_succeeded", "channel": "news", "data": "{}",
    }]
    assert app.channel("news").subscription_count == 1
    session.handle_text('{"event":"pusher:unsubscribe","data":{"channel":"news"}}')
    assert app.channel("news") is None
    session.handle_text('{"event":"pusher:unsubscribe","data":{"channel":"news"}}')
    assert client.take() == []


def test_private_and_encrypted_need_a_valid_signature():
    app = app_state()
    session, client = open_session(app, "1.1")
    for channel in ("private-a", "private-encrypted-a"):
        session.handle_text(sub(channel))
        code, message = error(client.take()[0])
        assert code == 4009 and channel in message
        session.handle_text(sub(channel, sign_channel("key", "wrong", "1.1", channel)))
        assert error(client.take()[0])[0] == 4009
        session.handle_text(sub(channel, sign_channel("key", "secret", "9.9", channel)))
        assert error(client.take()[0])[0] == 4009
        assert app.channel(channel) is None
        session.handle_text(sub(channel, sign_channel("key", "secret", "1.1", channel)))
        assert client.take()[0]["event"] == "pusher_internal:subscription_succeeded"
    assert client.closed is None


def test_presence_signs_channel_data_exactly_as_received():
    session, client = open_session(app_state(), "1.1")
    channel_data = '{"user_id":"7",  "user_info":{"name":"Ann"}}'
    auth = sign_channel("key", "secret", "1.1", "presence-room", channel_data)
    session.handle_text(sub("presence-room", auth, json.dumps(json.loads(channel_data))))
    assert error(client.take()[0])[0] == 4009
    session.handle_text(sub("presence-room", auth, channel_data))
    [succeeded] = client.take()
    assert json.loads(succeeded["data"]) == {
        "presence": {"count": 1, "ids": ["7"], "hash": {"7": {"name": "Ann"}}}
    }


def test_presence_members_are_users_not_sockets():
    app = app_state()
    alice_tab1, c1 = open_session(app, "1.1")
    alice_tab2, c2 = open_session(app, "1.2")
    bob, c3 = open_session(app, "1.3")
    presence_sub(alice_tab1, "presence-r", "alice", {"n": "A"})
    presence_sub(bob, "presence-r", "bob")
    c1.take(), c3.take()
    presence_sub(alice_tab2, "presence-r", "alice", {"n": "A"})
    [succeeded] = c2.take()
    assert json.loads(succeeded["data"])["presence"]["count"] == 2
    assert c1.take() == [] and c3.take() == []  # no member_added for a second tab
    alice_tab1.close()
    assert c3.take() == []  # alice still has a tab open
    alice_tab2.close()
    assert c3.take() == [{
        "event": "pusher_internal:member_removed", "channel": "presence-r",
        "data": '{"user_id":"alice"}',
    }]
    assert members(app, "presence-r") == {"bob": None}


def test_member_added_goes_to_others_only():
    app = app_state()
    first, c1 = open_session(app, "1.1")
    second, c2 = open_session(app, "1.2")
    presence_sub(first, "presence-r", 42, {"x": 1})
    c1.take()
    presence_sub(second, "presence-r", "u2")
    assert c1.take() == [{
        "event": "pusher_internal:member_added", "channel": "presence-r",
        "data": '{"user_id":"u2","user_info":null}',
    }]
    assert [m["event"] for m in c2.take()] == ["pusher_internal:subscription_succeeded"]
    assert members(app, "presence-r") == {"42": {"x": 1}, "u2": None}


def test_presence_rejects_bad_channel_data_and_oversized_info():
    session, client = open_session(app_state(max_user_info_size=50), "1.1")
    for channel_data in ("not json", "[1]", '{"user_info":{}}', '{"user_id":""}',
                         '{"user_id":true}', json.dumps({"user_id": "u", "user_info": "x" * 60})):
        auth = sign_channel("key", "secret", "1.1", "presence-r", channel_data)
        session.handle_text(sub("presence-r", auth, channel_data))
        assert error(client.take()[0])[0] == 4200
    session.handle_text(sub("presence-r", sign_channel("key", "secret", "1.1", "presence-r")))
    code, message = error(client.take()[0])
    assert code == 4200 and "need channel_data" in message
    assert session.app.channel("presence-r") is None


def test_presence_holds_at_most_the_member_limit():
    app = app_state(max_presence_members=3)
    sessions = [open_session(app, f"1.{n}") for n in range(5)]
    for n, (session, _) in enumerate(sessions[:3]):
        presence_sub(session, "presence-r", f"u{n}")
    fourth, c4 = sessions[3]
    presence_sub(fourth, "presence-r", "u3")
    code, message = error(c4.take()[0])
    assert code == 4004 and "3 members" in message
    fifth, c5 = sessions[4]
    presence_sub(fifth, "presence-r", "u0")  # an existing member's new tab is fine
    assert c5.take()[0]["event"] == "pusher_internal:subscription_succeeded"
    assert len(members(app, "presence-r")) == 3


def test_cache_channel_sends_last_event_or_cache_miss():
    app = app_state()
    session, client = open_session(app, "1.1")
    session.handle_text(sub("cache-prices"))
    assert [m["event"] for m in client.take()] == [
        "pusher_internal:subscription_succeeded", "pusher:cache_miss",
    ]
    app.deliver("cache-prices", encode_message("tick", '{"p":1}', channel="cache-prices"))
    app.deliver("cache-prices", encode_message("tick", '{"p":2}', channel="cache-prices"))
    client.take()
    late, late_client = open_session(app, "1.2")
    late.handle_text(sub("cache-prices"))
    assert late_client.take()[1] == {"event": "tick", "channel": "cache-prices", "data": '{"p":2}'}


def test_cache_remembers_events_published_before_anyone_subscribed():
    app = app_state()
    app.deliver("private-cache-x", encode_message("e", "1", channel="private-cache-x"))
    app.deliver("plain", encode_message("e", "1", channel="plain"))
    assert app.cached_event("private-cache-x") is not None
    assert app.cached_event("plain") is None


def test_cached_events_expire_after_30_minutes_as_on_pusher():
    clock = Clock()
    app = AppState(AppConfig(id="1", key="key", secret="secret"), clock)
    app.deliver("cache-a", encode_message("e", "1", channel="cache-a"))
    clock.now += 1799
    app.deliver("cache-b", encode_message("e", "2", channel="cache-b"))
    assert app.cached_event("cache-a") is not None
    clock.now += 2
    assert app.cached_event("cache-a") is None
    app.prune_cache()
    assert set(app.last_events) == {"cache-b"}
    clock.now += 1800
    app.prune_cache()
    assert app.last_events == {}


def test_deliver_skips_the_excluded_socket():
    app = app_state()
    a, ca = open_session(app, "1.1")
    b, cb = open_session(app, "1.2")
    a.handle_text(sub("news"))
    b.handle_text(sub("news"))
    ca.take(), cb.take()
    app.deliver("news", encode_message("e", "{}", channel="news"), except_socket_id="1.1")
    assert ca.take() == []
    assert cb.take() == [{"event": "e", "channel": "news", "data": "{}"}]


def client_event(channel, event="client-typing", data=None):
    return json.dumps({"event": event, "channel": channel, "data": data or {"t": 1}})


def private_pair(**settings):
    app = app_state(**settings)
    pair = [open_session(app, f"1.{n}") for n in (1, 2)]
    for session, client in pair:
        session.handle_text(sub("private-chat", sign_channel(
            "key", "secret", session.socket_id, "private-chat")))
        client.take()
    return app, pair


def test_client_events_reach_others_never_the_sender():
    _, [(a, ca), (_, cb)] = private_pair()
    a.handle_text(client_event("private-chat"))
    assert ca.take() == []
    assert cb.take() == [{"event": "client-typing", "channel": "private-chat", "data": '{"t":1}'}]


def test_client_events_on_presence_carry_user_id():
    app = app_state()
    a, ca = open_session(app, "1.1")
    b, cb = open_session(app, "1.2")
    presence_sub(a, "presence-r", "alice")
    presence_sub(b, "presence-r", "bob")
    ca.take(), cb.take()
    a.handle_text(client_event("presence-r"))
    assert cb.take()[0]["user_id"] == "alice"


def test_client_events_refused_off_private_channels_and_from_non_members():
    app, [(a, ca), _] = private_pair()
    a.handle_text(sub("news"))
    a.handle_text(sub("private-encrypted-x", sign_channel(
        "key", "secret", "1.1", "private-encrypted-x")))
    ca.take()
    for channel in ("news", "private-encrypted-x", "private-other"):
        a.handle_text(client_event(channel))
        code, message = error(ca.take()[0])
        assert code == 4009, message


def test_accept_client_events_from_none_and_all():
    _, [(a, ca), (_, cb)] = private_pair(accept_client_events_from="none")
    a.handle_text(client_event("private-chat"))
    assert error(ca.take()[0]) == (4009, "this app does not accept client events")
    assert cb.take() == []
    app, [(_, _), (_, cb)] = private_pair(accept_client_events_from="all")
    outsider, co = open_session(app, "1.9")
    outsider.handle_text(client_event("private-chat"))
    assert co.take() == []
    assert cb.take()[0]["event"] == "client-typing"


def test_client_events_rate_limited_to_10_per_second():
    clock = Clock()
    app = app_state()
    a, ca = open_session(app, "1.1", clock)
    b, cb = open_session(app, "1.2", clock)
    for session in (a, b):
        session.handle_text(sub("private-chat", sign_channel(
            "key", "secret", session.socket_id, "private-chat")))
    ca.take(), cb.take()
    for _ in range(12):
        a.handle_text(client_event("private-chat"))
    assert len(cb.take()) == 10
    errors = ca.take()
    assert [error(m)[0] for m in errors] == [4301, 4301]
    clock.now += 1.0
    a.handle_text(client_event("private-chat"))
    assert len(cb.take()) == 1
    assert ca.closed is None


def test_signin_verifies_user_data_and_tracks_the_user():
    app = app_state()
    session, client = open_session(app, "1.1")
    user_data = '{"id":"u7","name":"Ann"}'
    bad = json.dumps({"event": "pusher:signin", "data": {
        "auth": sign_user("key", "nope", "1.1", user_data), "user_data": user_data}})
    session.handle_text(bad)
    assert error(client.take()[0])[0] == 4009
    assert app.user_sockets("u7") == []
    good = json.dumps({"event": "pusher:signin", "data": {
        "auth": sign_user("key", "secret", "1.1", user_data), "user_data": user_data}})
    session.handle_text(good)
    assert client.take() == [{
        "event": "pusher:signin_success", "data": json.dumps({"user_data": user_data},
                                                              separators=(",", ":")),
    }]
    assert app.user_sockets("u7") == [client]
    app.deliver("#server-to-user-u7", encode_message("note", "{}", channel="#server-to-user-u7"))
    assert client.take()[0]["event"] == "note"
    session.close()
    assert app.user_sockets("u7") == [] and app.connection_count == 0


def test_signin_needs_an_id_in_user_data():
    session, client = open_session(app_state(), "1.1")
    for user_data in ("{}", "[]", "nope", '{"id":5}'):
        session.handle_text(json.dumps({"event": "pusher:signin", "data": {
            "auth": sign_user("key", "secret", "1.1", user_data), "user_data": user_data}}))
        assert error(client.take()[0])[0] == 4200


def test_presence_members_count_as_users_until_they_leave():
    app = app_state()
    session, client = open_session(app, "1.1")
    presence_sub(session, "presence-a", "u1")
    presence_sub(session, "presence-b", "u1")
    assert app.user_sockets("u1") == [client]
    session.handle_text('{"event":"pusher:unsubscribe","data":{"channel":"presence-a"}}')
    assert app.user_sockets("u1") == [client]
    session.handle_text('{"event":"pusher:unsubscribe","data":{"channel":"presence-b"}}')
    assert app.user_sockets("u1") == []


def test_resubscribing_confirms_again_without_duplicating():
    app = app_state()
    session, client = open_session(app, "1.1")
    session.handle_text(sub("news"))
    session.handle_text(sub("news"))
    assert [m["event"] for m in client.take()] == ["pusher_internal:subscription_succeeded"] * 2
    assert app.channel("news").subscription_count == 1


def test_users_own_channels_are_not_listed_as_occupied():
    app = app_state()
    session, client = open_session(app, "1.1")
    user_data = '{"id":"u7"}'
    session.handle_text(json.dumps({"event": "pusher:signin", "data": {
        "auth": sign_user("key", "secret", "1.1", user_data), "user_data": user_data}}))
    session.handle_text(sub("news"))
    assert list(app.occupied_channels()) == ["news"]
