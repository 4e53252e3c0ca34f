"""Watchlist events, subscription counts and authorized connections in the pure core.

Recording clients and the in-memory cluster state (answers at once), or a list as ``ask``
(answers later, as from Redis); the clock is a number the test moves.
"""

import json
from collections.abc import Callable

import pytest

from broadcaster.config import ConfigError, Webhook, load_config
from broadcaster.protocol.requests import (
    ChannelCounts,
    CountChannels,
    Counts,
    SignIn,
    SignOut,
    Unavailable,
    Watched,
)
from broadcaster.protocol.session import Session
from broadcaster.protocol.state import AppState
from broadcaster.protocol.subscription_count import THROTTLE_SECONDS
from broadcaster.server.cli import main
from broadcaster.webhooks.base import AppHooks
from broadcaster.webhooks.local import LocalWebhookQueue
from shared.signatures import sign_channel, sign_user
from tests.broadcaster.recording import Clock, RecordingClient, app_state, open_session


def sign_in(session, user_id, watchlist=None):
    user = {"id": user_id} if watchlist is None else {"id": user_id, "watchlist": watchlist}
    user_data = json.dumps(user)
    session.handle_text(json.dumps({"event": "pusher:signin", "data": {
        "auth": sign_user("key", "secret", session.socket_id, user_data),
        "user_data": user_data}}))


def watchlist_events(client):
    """The watchlist events a client got, each as (name, user ids), in order."""
    return [(event["name"], event["user_ids"])
            for message in client.take() if message["event"] == "pusher_internal:watchlist_events"
            for event in json.loads(message["data"])["events"]]


def test_watchlist_gets_the_state_after_signin_success_then_each_change():
    app = app_state(watchlist_events=True)
    bob, _ = open_session(app, "1.2")
    sign_in(bob, "bob")
    ann, ann_client = open_session(app, "1.1")
    sign_in(ann, "ann", ["bob", "cy", "dee"])
    messages = ann_client.take()
    assert [m["event"] for m in messages] == ["pusher:signin_success",
                                              "pusher_internal:watchlist_events"]
    assert "channel" not in messages[1]
    assert json.loads(messages[1]["data"]) == {"events": [
        {"name": "online", "user_ids": ["bob"]}, {"name": "offline", "user_ids": ["cy", "dee"]}]}
    cy_tab1, _ = open_session(app, "1.3")
    sign_in(cy_tab1, "cy")
    cy_tab2, _ = open_session(app, "1.4")
    sign_in(cy_tab2, "cy")  # a second tab: cy is online already
    cy_tab1.close()  # cy is still online in the other tab
    assert watchlist_events(ann_client) == [("online", ["cy"])]
    cy_tab2.close()
    bob.close()
    assert watchlist_events(ann_client) == [("offline", ["cy"]), ("offline", ["bob"])]


def test_watchers_stop_hearing_once_they_close_or_sign_in_as_someone_else():
    app = app_state(watchlist_events=True)
    ann, ann_client = open_session(app, "1.1")
    sign_in(ann, "ann", ["bob"])
    sign_in(ann, "eve", ["cy"])  # eve watches cy, not bob
    assert watchlist_events(ann_client) == [("offline", ["bob"]), ("offline", ["cy"])]
    bob, _ = open_session(app, "1.2")
    sign_in(bob, "bob")
    assert watchlist_events(ann_client) == []
    watcher, watcher_client = open_session(app, "1.3")
    sign_in(watcher, "w", ["ann", "eve"])
    assert watchlist_events(watcher_client) == [("online", ["eve"]), ("offline", ["ann"])]
    ann.close()
    assert watchlist_events(watcher_client) == [("offline", ["eve"])]
    assert app.watchers.keys() == {"ann", "eve"}  # only w's watchlist is left
    watcher.close()
    assert app.watchers == {}


def test_a_watchlist_over_100_ids_keeps_the_first_100_and_says_so_with_4302():
    app = app_state(watchlist_events=True)
    session, client = open_session(app, "1.1")
    sign_in(session, "ann", [f"u{i}" for i in range(101)])
    signed_in, error, events = client.take()
    assert signed_in["event"] == "pusher:signin_success"
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4302
    assert "101" in error["data"]["message"]
    [offline] = json.loads(events["data"])["events"]
    assert offline["user_ids"] == [f"u{i}" for i in range(100)]


def test_without_the_toggle_signin_asks_nothing_and_sends_no_watchlist_events():
    app = app_state()
    asked = []
    session = Session(app, RecordingClient("1.1"), Clock(), lambda p: None, asked.append)
    session.open()
    sign_in(session, "ann", ["bob"])
    assert asked == []
    assert [m["event"] for m in session.client.messages][-1] == "pusher:signin_success"


def test_a_socket_closed_before_its_signin_answer_signs_out_when_it_comes():
    app = app_state(watchlist_events=True)
    asked = []
    session = Session(app, RecordingClient("1.1"), Clock(), lambda p: None, asked.append)
    session.open()
    sign_in(session, "ann", ["bob"])
    [request] = asked
    assert isinstance(request, SignIn) and request.watchlist == ("bob",)
    session.close()
    assert len(asked) == 1  # no sign-out before the sign-in is known to have counted
    session.answer(request, Watched(()))
    [_, sign_out] = asked
    assert isinstance(sign_out, SignOut) and (sign_out.user_id, sign_out.socket_id) == (
        "ann", "1.1")


def subscribe(session, channel):
    data = {"channel": channel}
    if channel.startswith(("private-", "presence-")):
        channel_data = json.dumps({"user_id": session.socket_id}) if channel.startswith(
            "presence-") else None
        data["auth"] = sign_channel("key", "secret", session.socket_id, channel, channel_data)
        if channel_data:
            data["channel_data"] = channel_data
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": data}))


def counts(client):
    return [json.loads(m["data"])["subscription_count"] for m in client.take()
            if m["event"] == "pusher_internal:subscription_count"]


def test_subscription_counts_follow_each_change_after_subscription_succeeded():
    app = app_state(subscription_count=True)
    first, first_client = open_session(app, "1.1")
    subscribe(first, "news")
    messages = first_client.take()
    assert [m["event"] for m in messages] == ["pusher_internal:subscription_succeeded",
                                              "pusher_internal:subscription_count"]
    assert messages[1]["channel"] == "news"
    assert json.loads(messages[1]["data"]) == {"subscription_count": 1}
    second, second_client = open_session(app, "1.2")
    subscribe(second, "news")
    assert counts(first_client) == [2] and counts(second_client) == [2]
    second.close()
    assert counts(first_client) == [1]


def test_no_subscription_counts_on_presence_channels_or_without_the_toggle():
    app = app_state(subscription_count=True)
    session, client = open_session(app, "1.1")
    subscribe(session, "presence-room")
    assert counts(client) == []
    plain = app_state()
    session, client = open_session(plain, "1.1")
    subscribe(session, "news")
    assert counts(client) == []


def test_above_100_subscribers_counts_go_out_at_most_every_5_seconds():
    app = app_state(subscription_count=True)
    clock = Clock()
    sessions = [open_session(app, f"1.{i}", clock)[0] for i in range(1, 102)]
    watcher_client = sessions[0].client
    for session in sessions[:100]:
        subscribe(session, "news")
    assert counts(watcher_client)[-1] == 100
    subscribe(sessions[100], "news")  # 101, right after the count of 100: held back
    assert counts(watcher_client) == []
    app.subscription_counts.flush(clock.now + THROTTLE_SECONDS - 0.1)
    assert counts(watcher_client) == []
    clock.now += THROTTLE_SECONDS
    app.subscription_counts.flush(clock.now)
    assert counts(watcher_client) == [101]
    app.subscription_counts.flush(clock.now + THROTTLE_SECONDS)
    assert counts(watcher_client) == []  # nothing changed since
    sessions[100].unsubscribe("news")  # 100 is not above 100: at once
    assert counts(watcher_client) == [100]
    clock.now += THROTTLE_SECONDS
    subscribe(sessions[100], "news")  # 5 s after the last count: at once
    assert counts(watcher_client) == [101]


def test_in_a_cluster_counts_come_from_polls_of_the_cluster_state():
    app = app_state(subscription_count=True)
    clock = Clock()
    first, first_client = open_session(app, "1.1", clock)
    app.subscription_counts.polled = True  # as a shared cluster state sets it on attach
    subscribe(first, "news")
    subscribe(first, "presence-room")
    assert counts(first_client) == []  # this node's count is not the cluster's
    request = app.subscription_counts.poll()
    assert request == CountChannels("1", ("news",))
    assert app.subscription_counts.poll() is None  # one poll at a time
    app.subscription_counts.counted(Counts({"news": ChannelCounts(3)}), clock.now)
    assert counts(first_client) == [3]
    app.subscription_counts.poll()
    app.subscription_counts.counted(Counts({"news": ChannelCounts(3)}), clock.now)
    assert counts(first_client) == []  # unchanged: not sent again
    second, second_client = open_session(app, "1.2", clock)
    subscribe(second, "news")  # one came here as one left elsewhere: the count is the same,
    app.subscription_counts.poll()
    app.subscription_counts.counted(Counts({"news": ChannelCounts(3)}), clock.now)
    assert counts(second_client) == [3]  # but the newcomer is told
    app.subscription_counts.poll()
    app.subscription_counts.counted(Unavailable("Redis is down"), clock.now)
    assert counts(first_client) == [3] and app.subscription_counts.poll() is not None


def counting_webhook_app() -> tuple[AppState, Callable[[], list[tuple[str, int]]]]:
    """An app with the subscription_count webhook (and not the socket messages), its hooks
    feeding a real in-memory webhook queue; and what that queue's inbox holds, in order."""
    app = app_state(webhooks=(Webhook("http://127.0.0.1:9/hooks", ("subscription_count",)),))
    queue = LocalWebhookQueue()
    queue.want(app.id, {"subscription_count"})
    app.hooks = AppHooks(app.id, queue)
    return app, lambda: [(event.channel, event.subscription_count) for event in queue.inbox
                         if event.name == "subscription_count"]


def test_the_subscription_count_webhook_follows_the_same_throttle_without_socket_messages():
    app, webhooks = counting_webhook_app()
    clock = Clock()
    sessions = [open_session(app, f"1.{i}", clock)[0] for i in range(1, 102)]
    for session in sessions[:100]:
        subscribe(session, "news")
    subscribe(sessions[0], "presence-room")
    assert webhooks() == [("news", n) for n in range(1, 101)]
    assert counts(sessions[0].client) == []  # the socket messages stay off
    subscribe(sessions[100], "news")  # 101, right after the count of 100: held back
    assert webhooks()[-1] == ("news", 100)
    clock.now += THROTTLE_SECONDS
    app.subscription_counts.flush(clock.now)
    assert webhooks()[-1] == ("news", 101)


def test_in_a_cluster_the_node_its_last_subscriber_left_still_tells_the_webhook_the_count():
    app, webhooks = counting_webhook_app()
    clock = Clock()
    session, _ = open_session(app, "1.1", clock)
    app.subscription_counts.polled = True  # as a shared cluster state sets it on attach
    subscribe(session, "news")
    assert app.subscription_counts.poll() == CountChannels("1", ("news",))
    app.subscription_counts.counted(Counts({"news": ChannelCounts(3)}), clock.now)
    session.unsubscribe("news")  # two are left on other nodes, which may not have seen 3
    request = app.subscription_counts.poll()
    assert request == CountChannels("1", ("news",))
    app.subscription_counts.counted(Counts({"news": ChannelCounts(2)}), clock.now)
    assert webhooks() == [("news", 3), ("news", 2)]
    assert app.subscription_counts.poll() is None  # asked once, then forgotten


def test_authorized_connections_must_sign_in_or_join_a_private_channel_in_time():
    clock = Clock()
    app = app_state(authorized_connections_timeout=30.0)
    idle, _ = open_session(app, "1.1", clock)
    public, _ = open_session(app, "1.2", clock)
    subscribe(public, "news")  # a public channel does not authorize
    private, _ = open_session(app, "1.3", clock)
    subscribe(private, "private-x")
    signed, _ = open_session(app, "1.4", clock)
    sign_in(signed, "ann")
    clock.now += 29.9
    assert not any(s.unauthorized(clock.now) for s in (idle, public, private, signed))
    clock.now += 0.1
    assert [s.unauthorized(clock.now) for s in (idle, public, private, signed)] == [
        True, True, False, False]
    lax, _ = open_session(app_state(), "1.5", clock)
    assert not lax.unauthorized(clock.now + 1e6)


# --- the per-app toggles ----------------------------------------------------------------------

CREDS = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}


def test_user_features_are_off_unless_turned_on_per_app(tmp_path):
    [app] = load_config(CREDS).apps
    assert (app.watchlist_events, app.subscription_count,
            app.authorized_connections_timeout) == (False, False, None)
    [app] = load_config({**CREDS, "RESOUND_APP_WATCHLIST_EVENTS": "true",
                         "RESOUND_APP_SUBSCRIPTION_COUNT": "1",
                         "RESOUND_APP_AUTHORIZED_CONNECTIONS": "yes"}).apps
    assert (app.watchlist_events, app.subscription_count,
            app.authorized_connections_timeout) == (True, True, 30.0)
    file = tmp_path / "apps.json"
    file.write_text(json.dumps({"apps": [
        {"id": "2", "key": "two", "secret": "s", "watchlist_events": True,
         "authorized_connections": True, "authorized_connections_timeout": 5},
        {"id": "3", "key": "three", "secret": "s", "authorized_connections_timeout": 5}]}))
    two, three = load_config({"REVERB_APPS_FILE": str(file)}).apps
    assert (two.watchlist_events, two.subscription_count,
            two.authorized_connections_timeout) == (True, False, 5.0)
    assert three.authorized_connections_timeout is None  # a timeout alone turns nothing on


@pytest.mark.parametrize(("env", "fragment"), [
    ({"RESOUND_APP_WATCHLIST_EVENTS": "maybe"}, "RESOUND_APP_WATCHLIST_EVENTS must be true or"),
    ({"RESOUND_APP_AUTHORIZED_CONNECTIONS": "true",
      "RESOUND_APP_AUTHORIZED_CONNECTIONS_TIMEOUT": "0"},
     "RESOUND_APP_AUTHORIZED_CONNECTIONS_TIMEOUT must be at least 0.1"),
])
def test_bad_user_feature_settings_name_themselves(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config({**CREDS, **env})


def test_start_help_lists_the_user_features(capsys):
    with pytest.raises(SystemExit):
        main(["start", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("RESOUND_APP_WATCHLIST_EVENTS", "RESOUND_APP_SUBSCRIPTION_COUNT",
                 "RESOUND_APP_AUTHORIZED_CONNECTIONS_TIMEOUT 30 s"):
        assert name in help_text
