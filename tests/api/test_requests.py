"""The pure request parsing behind the HTTP API: every refusal names what was wrong."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcaster.api.validation import (
    ApiError,
    Trigger,
    parse_batch,
    parse_info,
    parse_json_object,
    parse_query,
    parse_trigger,
)

LIMIT = 10 * 1024


def refused(status, match, fn, *args):
    with pytest.raises(ApiError, match=match) as caught:
        fn(*args)
    assert caught.value.status == status


def test_parse_query_decodes_and_refuses_repeats():
    assert parse_query("a=1&info=user_count,subscription_count&b=x%2Cy&c=") == {
        "a": "1", "info": "user_count,subscription_count", "b": "x,y", "c": "",
    }
    refused(400, "'a' is given more than once", parse_query, "a=1&a=2")


def test_parse_info():
    allowed = {"user_count", "subscription_count"}
    assert parse_info(None, allowed) == frozenset()
    assert parse_info("user_count, subscription_count", allowed) == allowed
    refused(400, "unknown attribute.*bogus", parse_info, "user_count,bogus", allowed)
    refused(400, "comma-separated", parse_info, ["user_count"], allowed)


def test_parse_json_object():
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    refused(400, "empty", parse_json_object, b"")
    refused(400, "not valid JSON", parse_json_object, b"{nope")
    refused(400, "JSON object", parse_json_object, b"[1]")


def test_parse_trigger_single_and_many_channels():
    one = parse_trigger({"name": "e", "data": "{}", "channel": "a"}, LIMIT)
    assert one == Trigger("e", "{}", ("a",), None, frozenset())
    many = parse_trigger({"name": "e", "data": "x", "channels": ["a", "b", "a"],
                          "socket_id": "1.2", "info": "user_count"}, LIMIT)
    assert many.channels == ("a", "b")
    assert many.socket_id == "1.2"
    assert many.info == {"user_count"}


@pytest.mark.parametrize(
    ("fields", "status", "match"),
    [
        ({"data": "x", "channel": "a"}, 400, "event name"),
        ({"name": "", "data": "x", "channel": "a"}, 400, "event name"),
        ({"name": "e" * 201, "data": "x", "channel": "a"}, 400, "event name"),
        ({"name": "pusher:x", "data": "x", "channel": "a"}, 400, "reserved"),
        ({"name": "pusher_internal:x", "data": "x", "channel": "a"}, 400, "reserved"),
        ({"name": "e", "channel": "a"}, 400, "'data' is required"),
        ({"name": "e", "data": {"a": 1}, "channel": "a"}, 400, "must be a string"),
        ({"name": "e", "data": "x" * (LIMIT + 1), "channel": "a"}, 413, "larger than 10240"),
        ({"name": "e", "data": "é" * (LIMIT // 2 + 1), "channel": "a"}, 413, "larger"),
        ({"name": "e", "data": "x"}, 400, "'channel' or 'channels' is required"),
        ({"name": "e", "data": "x", "channel": "a", "channels": ["b"]}, 400, "not both"),
        ({"name": "e", "data": "x", "channels": []}, 400, "non-empty list"),
        ({"name": "e", "data": "x", "channels": "a"}, 400, "non-empty list"),
        ({"name": "e", "data": "x", "channels": [f"c{i}" for i in range(101)]}, 400, "at most 100"),
        ({"name": "e", "data": "x", "channels": ["ok", "bad channel"]}, 400, "bad channel"),
        ({"name": "e", "data": "x", "channel": "c" * 201}, 400, "longer than 200"),
        ({"name": "e", "data": "x", "channel": 5}, 400, "non-empty string"),
        ({"name": "e", "data": "x", "channel": "#server-to-user-"}, 400, "user id"),
        ({"name": "e", "data": "x", "channel": "#server-to-user-a b"}, 400, "user id"),
        ({"name": "e", "data": "x", "channel": "#other"}, 400, "only A-Z"),
        ({"name": "e", "data": "x", "channel": "a", "socket_id": "abc"}, 400, "socket_id"),
        ({"name": "e", "data": "x", "channel": "a", "socket_id": 12}, 400, "socket_id"),
        ({"name": "e", "data": "x", "channel": "a", "socket_id": "1." + "2" * 21}, 400,
         "socket_id"),
        ({"name": "e", "data": "x", "channel": "a", "info": "occupied"}, 400, "unknown"),
    ],
)
def test_parse_trigger_refusals(fields, status, match):
    refused(status, match, parse_trigger, fields, LIMIT)


def test_parse_trigger_accepts_a_users_personal_channel():
    trigger = parse_trigger({"name": "e", "data": "x", "channel": "#server-to-user-42"}, LIMIT)
    assert trigger.channels == ("#server-to-user-42",)


def test_parse_trigger_exactly_at_limit_is_fine():
    assert parse_trigger({"name": "e", "data": "x" * LIMIT, "channel": "a"}, LIMIT).data


def test_parse_trigger_takes_exactly_100_channels():
    channels = [f"c{i}" for i in range(100)]
    trigger = parse_trigger({"name": "e", "data": "x", "channels": channels}, LIMIT)
    assert trigger.channels == tuple(channels)


def test_parse_batch_validates_every_item():
    good = {"name": "e", "data": "x", "channel": "a"}
    assert len(parse_batch({"batch": [good] * 10}, LIMIT)) == 10
    refused(400, "at most 10", parse_batch, {"batch": [good] * 11}, LIMIT)
    refused(400, "non-empty list", parse_batch, {"batch": []}, LIMIT)
    refused(400, "non-empty list", parse_batch, {}, LIMIT)
    refused(400, r"batch\[2\]: bad channel", parse_batch,
            {"batch": [good, good, {**good, "channel": "a b"}]}, LIMIT)
    refused(413, r"batch\[1\]", parse_batch,
            {"batch": [good, {**good, "data": "x" * (LIMIT + 1)}]}, LIMIT)
    refused(400, r"batch\[0\]: an event must be a JSON object", parse_batch, {"batch": [1]}, LIMIT)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=5),
    max_leaves=20,
)
event_fields = st.fixed_dictionaries({}, optional={
    "name": json_values | st.text(max_size=30), "data": json_values | st.text(max_size=30),
    "channel": json_values | st.text(max_size=30), "channels": json_values,
    "socket_id": json_values | st.from_regex(r"\d+\.\d+", fullmatch=True), "info": json_values,
})


@settings(max_examples=150, deadline=None)
@given(st.one_of(json_values, event_fields))
def test_parse_trigger_refuses_anything_malformed_with_an_api_error(fields):
    try:
        trigger = parse_trigger(fields, LIMIT)
    except ApiError as exc:
        assert exc.status in (400, 413) and exc.reason
    else:
        assert isinstance(trigger.data, str) and trigger.channels


@settings(max_examples=100, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"batch": st.lists(event_fields,
                                                                        max_size=12)})))
def test_parse_batch_refuses_anything_malformed_with_an_api_error(fields):
    try:
        parse_batch(fields if isinstance(fields, dict) else {"batch": fields}, LIMIT)
    except ApiError as exc:
        assert exc.status in (400, 413) and exc.reason


@settings(deadline=None)  # a shared machine may pause any example
@given(st.text(max_size=60))
def test_parse_query_takes_any_text(query):
    try:
        assert isinstance(parse_query(query), dict)
    except ApiError as exc:
        assert exc.status == 400
