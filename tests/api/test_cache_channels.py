"""Cache replay on presence and encrypted cache channels, and encrypted events relayed unread.

Events come from the official ``pusher`` SDK over the HTTP API; subscribers are websockets
clients. Encrypted payloads are made by the SDK with a master key the broadcaster never sees,
and opened here with the ``shared_secret`` the SDK's ``authenticate`` hands a browser, with
PyNaCl's SecretBox as pusher-js does.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import nacl.secret
import pusher
import pytest
from pusher.requests import RequestsBackend

from tests.pusher_socket import PusherSocket, member
from tests.sdk import assert_nothing_then
from tests.servers import HOST, Broadcaster

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


class RecordingBackend(RequestsBackend):
    """The SDK's own HTTP transport, keeping the ``data`` of each request it sends."""

    def __init__(self, client: Any, sent: list[str], **options: Any) -> None:
        super().__init__(client, **options)
        self.sent = sent

    def send_request(self, request: Any) -> Any:
        self.sent.append(request.params.get("data"))
        return super().send_request(request)


class EncryptingSdk(pusher.Pusher):
    """The SDK with an end-to-end encryption master key (the broadcaster has none); ``sent``
    holds the ``data`` strings it published (nonce and ciphertext, for encrypted channels)."""

    def __init__(self, server: Broadcaster) -> None:
        self.sent: list[str] = []
        super().__init__(app_id=server.app_id, key=server.key, secret=server.secret, ssl=False,
                         host=HOST, port=server.port, encryption_master_key_base64=MASTER_KEY,
                         backend=RecordingBackend, sent=self.sent)

    def trigger_encrypted(self, channel: str, event: str, data: Any) -> str:
        """Publish ``data``; the ``data`` string the SDK sent for it."""
        self.trigger(channel, event, data)
        return self.sent[-1]


@pytest.fixture
def encrypting_sdk(server: Broadcaster) -> EncryptingSdk:
    return EncryptingSdk(server)


def subscribe_encrypted(sdk: pusher.Pusher, socket: PusherSocket, channel: str) -> bytes:
    """Subscribe with the SDK's auth answer (as a browser gets it); the channel's shared secret."""
    answer = sdk.authenticate(channel, socket.socket_id)
    socket.subscribe(channel, auth=answer["auth"])
    message = socket.recv()
    assert message["event"] == "pusher_internal:subscription_succeeded", message
    return base64.b64decode(answer["shared_secret"])


def decrypt(shared_secret: bytes, data: str) -> Any:
    """Open an encrypted event's ``data`` as pusher-js does."""
    sealed = json.loads(data)
    box = nacl.secret.SecretBox(shared_secret)
    plain = box.decrypt(base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["nonce"]))
    return json.loads(plain)


def test_presence_cache_channel_replays_the_last_api_event_to_a_new_member(server, sdk,
                                                                           sockets):
    channel = "presence-cache-auction"
    sdk.trigger(channel, "bid", {"eur": 10})  # nobody subscribed yet: cached all the same
    sdk.trigger(channel, "bid", {"eur": 12})
    first = sockets()
    first.joined(channel, member("ann"))
    replayed = first.recv()
    assert (replayed["event"], replayed["channel"]) == ("bid", channel)
    assert json.loads(replayed["data"]) == {"eur": 12}

    sdk.trigger(channel, "bid", {"eur": 15})
    assert json.loads(first.next_event()["data"]) == {"eur": 15}
    late = sockets()
    late.joined(channel, member("bob"))
    assert json.loads(late.recv()["data"]) == {"eur": 15}
    # The replay is for the new member only; the first one just hears that bob came.
    added = first.recv()
    assert added["event"] == "pusher_internal:member_added", added
    assert_nothing_then(first, server, channel)


@pytest.mark.parametrize("channel", ["presence-cache-quiet", "private-encrypted-cache-quiet"])
def test_cache_channel_without_an_event_answers_cache_miss(channel, sockets, encrypting_sdk):
    socket = sockets()
    if channel.startswith("presence-"):
        socket.joined(channel, member("ann"))
    else:
        subscribe_encrypted(encrypting_sdk, socket, channel)
    assert socket.recv() == {"event": "pusher:cache_miss", "channel": channel}


def test_encrypted_cache_channel_replays_the_ciphertext_as_sent(sockets, encrypting_sdk):
    channel = "private-encrypted-cache-ledger"
    encrypting_sdk.trigger_encrypted(channel, "balance", {"eur": 1})
    sent = encrypting_sdk.trigger_encrypted(channel, "balance", {"eur": 2})
    socket = sockets()
    shared_secret = subscribe_encrypted(encrypting_sdk, socket, channel)
    replayed = socket.recv()
    assert (replayed["event"], replayed["channel"], replayed["data"]) == ("balance", channel, sent)
    assert decrypt(shared_secret, replayed["data"]) == {"eur": 2}


def test_encrypted_event_is_relayed_unchanged_and_opens_with_the_shared_secret(
    sockets, encrypting_sdk
):
    channel = "private-encrypted-payroll"
    socket = sockets()
    shared_secret = subscribe_encrypted(encrypting_sdk, socket, channel)
    sent = encrypting_sdk.trigger_encrypted(channel, "salary", {"name": "Ann", "eur": 4200})
    assert set(json.loads(sent)) == {"nonce", "ciphertext"}  # the SDK did encrypt it
    event = socket.next_event()
    assert (event["event"], event["channel"], event["data"]) == ("salary", channel, sent)
    assert decrypt(shared_secret, event["data"]) == {"name": "Ann", "eur": 4200}
