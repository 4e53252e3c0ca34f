"""The signing code in shared/, checked against the official Pusher docs' worked examples."""

import pytest

from shared import signatures as sig

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SOCKET = "1234.1234"
PRESENCE_DATA = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}'
REST_BODY = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'


def test_private_channel_vector():
    assert sig.sign_channel(KEY, SECRET, SOCKET, "private-foobar") == (
        f"{KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    )


def test_presence_channel_vector_signs_channel_data_as_given():
    assert sig.sign_channel(KEY, SECRET, SOCKET, "presence-foobar", PRESENCE_DATA) == (
        f"{KEY}:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
    )


def test_user_authentication_vector():
    assert sig.sign_user(KEY, SECRET, SOCKET, '{"id":"12345"}') == (
        f"{KEY}:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    )


def test_rest_request_vector():
    params = sig.sign_request(KEY, SECRET, "POST", "/apps/3/events", body=REST_BODY,
                              timestamp=1353088179)
    assert params["body_md5"] == "ec365a775a4cd0599faeb73354201b6f"
    assert params["auth_signature"] == (
        "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
    )


def test_verify_channel_accepts_own_signature_and_rejects_tampering():
    auth = sig.sign_channel(KEY, SECRET, SOCKET, "private-foobar")
    assert sig.verify_channel(auth, KEY, SECRET, SOCKET, "private-foobar")
    assert not sig.verify_channel(auth, KEY, SECRET, "1234.1235", "private-foobar")
    assert not sig.verify_channel(auth, KEY, SECRET, SOCKET, "private-other")
    assert not sig.verify_channel(auth.replace(KEY, "otherkey"), KEY, SECRET, SOCKET,
                                  "private-foobar")
    assert not sig.verify_channel(None, KEY, SECRET, SOCKET, "private-foobar")
    assert not sig.verify_channel("no-colon", KEY, SECRET, SOCKET, "private-foobar")


def test_verify_presence_is_sensitive_to_channel_data_bytes():
    auth = sig.sign_channel(KEY, SECRET, SOCKET, "presence-foobar", PRESENCE_DATA)
    assert sig.verify_channel(auth, KEY, SECRET, SOCKET, "presence-foobar", PRESENCE_DATA)
    reformatted = PRESENCE_DATA.replace(":", ": ")
    assert not sig.verify_channel(auth, KEY, SECRET, SOCKET, "presence-foobar", reformatted)


def test_verify_request_round_trip():
    params = sig.sign_request(KEY, SECRET, "POST", "/apps/3/events", body=REST_BODY,
                              timestamp=1353088179)
    sig.verify_request(KEY, SECRET, "POST", "/apps/3/events", params, REST_BODY, now=1353088179)


@pytest.mark.parametrize(
    ("change", "body", "now", "reason"),
    [
        ({"auth_key": "wrong"}, REST_BODY, 1353088179, "auth_key"),
        ({"auth_signature": "0" * 64}, REST_BODY, 1353088179, "auth_signature"),
        ({"body_md5": "0" * 32}, REST_BODY, 1353088179, "body_md5"),
        ({}, REST_BODY + b" ", 1353088179, "body_md5"),
        ({}, REST_BODY, 1353088179 + 601, "auth_timestamp"),
        ({}, REST_BODY, 1353088179 - 601, "auth_timestamp"),  # signed 601 s in the future
        ({"auth_timestamp": "soon"}, REST_BODY, 1353088179, "auth_timestamp"),
        ({"auth_version": "2.0"}, REST_BODY, 1353088179, "auth_version"),
    ],
)
def test_verify_request_names_the_failed_check(change, body, now, reason):
    params = sig.sign_request(KEY, SECRET, "POST", "/apps/3/events", body=REST_BODY,
                              timestamp=1353088179)
    params.update(change)
    with pytest.raises(sig.RequestAuthError, match=reason):
        sig.verify_request(KEY, SECRET, "POST", "/apps/3/events", params, body, now=now)


@pytest.mark.parametrize("skew", [-600, 600])
def test_verify_request_accepts_a_clock_600_s_off_either_way(skew):
    params = sig.sign_request(KEY, SECRET, "POST", "/apps/3/events", body=REST_BODY,
                              timestamp=1353088179)
    sig.verify_request(KEY, SECRET, "POST", "/apps/3/events", params, REST_BODY,
                       now=1353088179 + skew)


def test_verify_request_checks_body_md5_of_an_empty_body_when_given():
    """SDKs sign GET requests with the MD5 of the empty body; a wrong one is refused too."""
    params = sig.sign_request(KEY, SECRET, "GET", "/apps/3/channels", timestamp=1353088179)
    sig.verify_request(KEY, SECRET, "GET", "/apps/3/channels", params, b"", now=1353088179)
    params = sig.sign_request(KEY, SECRET, "GET", "/apps/3/channels",
                              {"body_md5": sig.body_md5(b"x")}, timestamp=1353088179)
    with pytest.raises(sig.RequestAuthError, match="body_md5 does not match"):
        sig.verify_request(KEY, SECRET, "GET", "/apps/3/channels", params, b"", now=1353088179)


def test_verify_request_says_when_body_md5_is_missing():
    params = sig.sign_request(KEY, SECRET, "POST", "/apps/3/events", body=REST_BODY,
                              timestamp=1353088179)
    del params["body_md5"]
    with pytest.raises(sig.RequestAuthError, match="body_md5 is missing"):
        sig.verify_request(KEY, SECRET, "POST", "/apps/3/events", params, REST_BODY,
                           now=1353088179)
