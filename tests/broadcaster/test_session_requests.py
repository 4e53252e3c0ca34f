"""The session's cluster requests, Sans-I/O: a list stands in for ``ask``; the test answers.

This is how the Redis twin drives a session (answers come later), with no socket and no loop.
"""

import json

from broadcaster.protocol.publication import Publication
from broadcaster.protocol.requests import (
    LISTENING,
    Cached,
    FetchCache,
    Full,
    Joined,
    JoinPresence,
    LeavePresence,
    Left,
    Listen,
    Unavailable,
)
from broadcaster.protocol.session import MAX_BACKLOG, Session
from shared.signatures import sign_channel
from tests.broadcaster.recording import Clock, RecordingClient, app_state
from tests.pusher_socket import error


def pending_session(socket_id="1.1", **settings):
    """A session whose requests pile up in a list, and whose publications in another."""
    app = app_state(**settings)
    client = RecordingClient(socket_id)
    asked, published = [], []
    session = Session(app, client, Clock(), published.append, asked.append)
    session.open()
    client.take()
    return session, client, asked, published


def join(session, channel, user_id, info=None):
    channel_data = json.dumps({"user_id": user_id, "user_info": info})
    auth = sign_channel("key", "secret", session.socket_id, channel, channel_data)
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {
        "channel": channel, "auth": auth, "channel_data": channel_data}}))


def ping(session):
    session.handle_text('{"event":"pusher:ping","data":{}}')


def test_presence_join_asks_and_answers_in_order_with_later_messages():
    session, client, asked, _ = pending_session()
    join(session, "presence-room", "ann", {"n": 1})
    [request] = asked
    assert isinstance(request, JoinPresence)
    assert (request.channel, request.user_id, request.user_info) == ("presence-room", "ann",
                                                                     {"n": 1})
    assert request.added == Publication(
        "1", ("presence-room",), "pusher_internal:member_added",
        json.dumps({"user_id": "ann", "user_info": {"n": 1}}, separators=(",", ":")),
        except_socket_id="1.1")
    ping(session)  # waits behind the join
    assert client.take() == []
    session.answer(request, Joined(True, {"bob": None, "ann": {"n": 1}}))
    succeeded, pong = client.take()
    assert succeeded["event"] == "pusher_internal:subscription_succeeded"
    assert json.loads(succeeded["data"]) == {"presence": {
        "count": 2, "ids": ["bob", "ann"], "hash": {"bob": None, "ann": {"n": 1}}}}
    assert pong["event"] == "pusher:pong"
    assert session.app.channel("presence-room").user_of("1.1") == "ann"


def test_full_and_unavailable_answers_are_errors_and_leave_no_subscription():
    session, client, asked, _ = pending_session()
    join(session, "presence-a", "ann")
    session.answer(asked[-1], Full(5))
    assert error(client.take()[0]) == (4004, "presence-a already has 5 members")
    join(session, "presence-b", "ann")
    session.answer(asked[-1], Unavailable("Redis at redis://x is unreachable"))
    code, message = error(client.take()[0])
    assert code == 4200 and "Redis at redis://x is unreachable" in message
    assert session.channels == {} and session.app.channels == {}


def test_a_socket_closed_while_its_join_was_open_leaves_when_the_answer_lands():
    session, client, asked, _ = pending_session()
    join(session, "presence-room", "ann")
    session.close()
    assert len(asked) == 1  # nothing to leave yet: the join has not been answered
    session.answer(asked[0], Joined(True, {"ann": None}))
    leave = asked[1]
    assert isinstance(leave, LeavePresence)
    assert (leave.channel, leave.socket_id, leave.user_id) == ("presence-room", "1.1", "ann")
    assert client.take() == []


def test_unsubscribe_asks_to_leave_with_the_removal_to_announce():
    session, client, asked, _ = pending_session()
    join(session, "presence-room", "ann")
    session.answer(asked[0], Joined(True, {"ann": None}))
    session.handle_text('{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}')
    leave = asked[1]
    assert isinstance(leave, LeavePresence)
    assert leave.removed.event == "pusher_internal:member_removed"
    assert json.loads(leave.removed.data) == {"user_id": "ann"}
    session.answer(leave, Left(True))
    assert session.app.channel("presence-room") is None


def test_cache_channel_subscription_waits_for_the_last_event():
    session, client, asked, _ = pending_session()
    session.handle_text('{"event":"pusher:subscribe","data":{"channel":"cache-rates"}}')
    [request] = asked
    assert request == FetchCache("1", "cache-rates")
    ping(session)
    assert client.take() == []
    last = b'{"event":"rate","channel":"cache-rates","data":"1"}'
    session.answer(request, Cached(last))
    assert [m["event"] for m in client.take()] == [
        "pusher_internal:subscription_succeeded", "rate", "pusher:pong"]


def test_the_backlog_is_bounded_and_overflow_closes_with_4100():
    session, client, asked, _ = pending_session()
    join(session, "presence-room", "ann")
    for _ in range(MAX_BACKLOG):
        ping(session)
    assert client.closed is None
    ping(session)
    assert client.closed[0] == 4100


def test_subscribing_again_to_a_cache_channel_replays_its_last_event_again():
    session, client, asked, _ = pending_session()
    last = b'{"event":"rate","channel":"cache-rates","data":"1"}'
    for _ in range(2):
        session.handle_text('{"event":"pusher:subscribe","data":{"channel":"cache-rates"}}')
        session.answer(asked[-1], Cached(last))
        assert [m["event"] for m in client.take()] == [
            "pusher_internal:subscription_succeeded", "rate"]
    assert len(asked) == 2


class NotHeardYet:
    """Routes of a node that has not heard any channel yet (the Redis bus, before Redis
    confirms a subscription): the session must ask Listen."""

    def opened(self, channel):
        pass

    def closed(self, channel):
        pass

    def ready(self, channel):
        return False


def test_subscribing_again_while_the_node_listens_asks_once_and_succeeds_once():
    session, client, asked, _ = pending_session()
    session.app.routes = NotHeardYet()
    for _ in range(50):  # a client repeating itself may not pile up open requests
        session.handle_text(json.dumps({"event": "pusher:subscribe",
                                        "data": {"channel": "news"}}))
    assert asked == [Listen("1", "news")]
    session.answer(asked[0], LISTENING)
    assert [m["event"] for m in client.take()] == ["pusher_internal:subscription_succeeded"]
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
    assert asked[1:] == [Listen("1", "news")]  # answered: a later subscription asks again
