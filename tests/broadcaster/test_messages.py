"""Parsing and validating client frames into commands (pure, fast)."""

import pytest

from broadcaster.protocol.messages import (
    ClientEvent,
    Ping,
    Pong,
    ProtocolError,
    Signin,
    Subscribe,
    Unsubscribe,
    parse_message,
)


def test_commands_parse_into_typed_values():
    assert parse_message('{"event":"pusher:ping","data":{}}') == Ping()
    assert parse_message(b'{"event":"pusher:pong"}') == Pong()
    assert parse_message(
        '{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"k:s"}}'
    ) == Subscribe("private-a", "k:s", None)
    assert parse_message(
        '{"event":"pusher:unsubscribe","data":{"channel":"a"}}'
    ) == Unsubscribe("a")
    assert parse_message(
        '{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{}"}}'
    ) == Signin("k:s", "{}")
    assert parse_message(
        '{"event":"client-typing","channel":"private-a","data":{"x":1}}'
    ) == ClientEvent("client-typing", "private-a", {"x": 1})


def test_subscribe_data_may_be_a_json_string():
    command = parse_message('{"event":"pusher:subscribe","data":"{\\"channel\\":\\"news\\"}"}')
    assert command == Subscribe("news", None, None)


@pytest.mark.parametrize("text, fragment", [
    ("not json", "not valid JSON"),
    ("[1,2]", "JSON object"),
    ('{"data":{}}', "'event'"),
    ('{"event":5}', "'event'"),
    ('{"event":"pusher:subscribe"}', "data must be a JSON object"),
    ('{"event":"pusher:subscribe","data":"nope"}', "data must be a JSON object"),
    ('{"event":"pusher:subscribe","data":{}}', "data.channel must be a string"),
    ('{"event":"pusher:subscribe","data":{"channel":7}}', "data.channel must be a string"),
    ('{"event":"pusher:subscribe","data":{"channel":"a b"}}', "may contain only"),
    ('{"event":"pusher:subscribe","data":{"channel":"' + "a" * 201 + '"}}', "200"),
    ('{"event":"pusher:subscribe","data":{"channel":"private-a","auth":5}}', "data.auth"),
    ('{"event":"pusher:unsubscribe","data":{"channel":""}}', "non-empty"),
    ('{"event":"pusher:signin","data":{"auth":"x"}}', "data.user_data"),
    ('{"event":"pusher_internal:member_added","data":"{}"}', "unknown event"),
    ('{"event":"pusher:whatever"}', "unknown event"),
    ('{"event":"order.updated","channel":"private-a"}', "not a client event"),
    ('{"event":"client-x"}', "'channel'"),
    ('{"event":"client-x","channel":"bad channel"}', "'channel'"),
    ('{"event":"client-' + "x" * 200 + '","channel":"private-a"}', "200"),
])
def test_bad_messages_raise_4200_with_a_reason(text, fragment):
    with pytest.raises(ProtocolError) as caught:
        parse_message(text)
    assert caught.value.code == 4200
    assert fragment in caught.value.message
