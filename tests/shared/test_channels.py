"""Channel-name rules from shared/channels.py."""

import pytest

from shared.channels import Access, channel_name_error, channel_type


@pytest.mark.parametrize(
    ("name", "access", "cached"),
    [
        ("orders", Access.PUBLIC, False),
        ("cache-orders", Access.PUBLIC, True),
        ("private-orders", Access.PRIVATE, False),
        ("private-cache-orders", Access.PRIVATE, True),
        ("private-encrypted-orders", Access.ENCRYPTED, False),
        ("private-encrypted-cache-orders", Access.ENCRYPTED, True),
        ("presence-room", Access.PRESENCE, False),
        ("presence-cache-room", Access.PRESENCE, True),
        ("public-private-x", Access.PUBLIC, False),
        ("xprivate-x", Access.PUBLIC, False),
    ],
)
def test_prefixes_are_anchored_and_longest_first(name, access, cached):
    kind = channel_type(name)
    assert (kind.access, kind.cached) == (access, cached)


def test_client_events_only_on_private_and_presence():
    assert channel_type("private-a").accepts_client_events
    assert channel_type("presence-a").accepts_client_events
    assert not channel_type("a").accepts_client_events
    assert not channel_type("private-encrypted-a").accepts_client_events


@pytest.mark.parametrize("name", ["a", "A-z_0=9@,.;", "x" * 200, "#server-to-user-u1"])
def test_valid_names(name):
    assert channel_name_error(name) is None


@pytest.mark.parametrize("name", ["", "x" * 201, "has space", "slash/", "é", None, 5, "#x",
                                  "#server-to-user-", "#server-to-user-a b"])
def test_invalid_names(name):
    assert channel_name_error(name)
