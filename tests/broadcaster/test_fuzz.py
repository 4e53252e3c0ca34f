"""Hypothesis: arbitrary frames and JSON never crash the message handler.

Whatever a client sends, the handler either answers with well-formed Pusher messages or sends
nothing, and it never raises or closes the socket.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from broadcaster.protocol.messages import (
    CLIENT_EVENT_RATE_LIMIT,
    GENERIC_RECONNECT,
    OVER_QUOTA,
    UNAUTHORIZED,
)
from tests.broadcaster.recording import app_state, open_session

ERROR_CODES = {GENERIC_RECONNECT, UNAUTHORIZED, OVER_QUOTA, CLIENT_EVENT_RATE_LIMIT}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
channels = st.sampled_from(["news", "private-a", "presence-a", "cache-a", "private-encrypted-a",
                            "#server-to-user-x",
                            "presence-cache-a", "", "bad name", "x" * 201]) | st.text(max_size=30)
events = st.sampled_from(["pusher:subscribe", "pusher:unsubscribe", "pusher:ping",
                          "pusher:pong", "pusher:signin", "pusher_internal:member_added",
                          "client-x", "other"]) | st.text(max_size=20)
data_objects = st.fixed_dictionaries({}, optional={
    "channel": channels,
    "auth": st.text(max_size=80) | json_values,
    "channel_data": st.text(max_size=80) | json_values,
    "user_data": st.text(max_size=80) | json_values,
})
messages = st.fixed_dictionaries({"event": events}, optional={
    "data": data_objects | json_values | data_objects.map(json.dumps),
    "channel": channels | json_values,
})
frames = (
    messages.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200)
)


def check_well_formed(message):
    assert isinstance(message, dict) and isinstance(message.get("event"), str)
    if message["event"] == "pusher:error":
        data = message["data"]
        assert data["code"] in ERROR_CODES
        assert isinstance(data["message"], str) and data["message"]
    elif "data" in message:
        assert isinstance(message["data"], str)
        json.loads(message["data"])


@settings(max_examples=400, deadline=None)
@given(st.lists(frames, min_size=1, max_size=6))
def test_arbitrary_frames_get_well_formed_answers_or_nothing(batch):
    app = app_state()
    session, client = open_session(app, "1.1")
    peer, peer_client = open_session(app, "1.2")
    peer.handle_text('{"event":"pusher:subscribe","data":{"channel":"news"}}')
    peer_client.take()
    for frame in batch:
        session.handle_text(frame)
        for message in client.take() + peer_client.take():
            check_well_formed(message)
    assert client.closed is None
    session.close()
    peer.close()
    assert app.connection_count == 0 and not app.channels and not app.users
