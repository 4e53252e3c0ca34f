"""Channel-pattern matching (pure) and this app's rules for real users."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.webapp.conftest import ADMIN, ALICE, PASSWORD, login
from webapp.accounts.passwords import set_password
from webapp.broadcasting.channel_rules import ChannelRules, compile_pattern, strip_auth_prefix
from webapp.broadcasting.channels import rules
from webapp.extensions import db
from webapp.orders.models import Order, User


@pytest.mark.parametrize(
    ("channel", "stripped"),
    [
        ("private-user.1.orders", "user.1.orders"),
        ("presence-orders.1.viewers", "orders.1.viewers"),
        ("private-encrypted-secret", "secret"),
        ("private-private-x", "private-x"),  # only the first prefix goes
        ("admin.orders", "admin.orders"),
        ("xprivate-admin.orders", "xprivate-admin.orders"),
    ],
)
def test_strip_auth_prefix_removes_only_the_first_anchored_prefix(channel, stripped):
    assert strip_auth_prefix(channel) == stripped


@pytest.mark.parametrize(
    ("pattern", "name", "params"),
    [
        ("user.{user_id}.orders", "user.42.orders", {"user_id": "42"}),
        ("user.{user_id}.orders", "user.abc-1.orders", {"user_id": "abc-1"}),
        ("user.{user_id}.orders", "user.4.2.orders", None),  # {x} never spans a dot
        ("user.{user_id}.orders", "user..orders", None),  # {x} is never empty
        ("user.{user_id}.orders", "user.1.orders.more", None),  # the whole name must match
        ("user.{user_id}.orders", "xuser.1.orders", None),
        ("admin.orders", "admin.orders", {}),
        ("admin.orders", "adminXorders", None),  # a literal dot is not a wildcard
        ("a.{x}.b.{y}", "a.1.b.2", {"x": "1", "y": "2"}),
    ],
)
def test_pattern_matching(pattern, name, params):
    found = compile_pattern(pattern).fullmatch(name)
    assert (found.groupdict() if found else None) == params


def test_registry_uses_the_first_matching_rule_and_passes_parameters():
    registry = ChannelRules()
    calls = []

    @registry.channel("room.{room_id}")
    def room(user, room_id):
        calls.append((user, room_id))
        return {"room": room_id}

    @registry.channel("room.{other}")
    def never(user, other):
        raise AssertionError("the first matching rule decides")

    assert registry.authorize("u", "presence-room.7") == {"room": "7"}
    assert calls == [("u", "7")]
    assert registry.match("private-lobby") is None
    assert registry.authorize("u", "private-lobby") is None


def _users() -> dict[str, User]:
    return {u.email.split("@")[0]: u for u in db.session.scalars(db.select(User))}


def test_user_orders_channel_is_only_for_that_user(app: Flask):
    with app.app_context():
        users = _users()
        alice, bob, admin = users["alice"], users["bob"], users["admin"]
        assert rules.authorize(alice, f"private-user.{alice.id}.orders") is True
        assert not rules.authorize(bob, f"private-user.{alice.id}.orders")
        assert not rules.authorize(admin, f"private-user.{alice.id}.orders")


def test_admin_orders_channel_is_only_for_admins(app: Flask):
    with app.app_context():
        users = _users()
        assert rules.authorize(users["admin"], "private-admin.orders") is True
        assert not rules.authorize(users["alice"], "private-admin.orders")


def test_order_viewers_are_the_owner_and_admins_with_id_and_name(app: Flask):
    with app.app_context():
        users = _users()
        order = db.session.scalars(db.select(Order).where(Order.user_id == users["alice"].id)
                                   ).first()
        channel = f"presence-orders.{order.id}.viewers"
        for who in ("alice", "admin"):
            user = users[who]
            assert rules.authorize(user, channel) == {"id": user.id, "name": user.name}
        assert not rules.authorize(users["bob"], channel)
        assert not rules.authorize(users["admin"], "presence-orders.99999.viewers")
        assert not rules.authorize(users["admin"], "presence-orders.x.viewers")


@pytest.fixture
def users_12_and_21(app: Flask) -> None:
    """Users whose ids extend the seeded ids 1 (admin) and 2 (alice) by one digit."""
    with app.app_context():
        for user_id in (12, 21):
            user = User(id=user_id, name=f"User {user_id}", email=f"user{user_id}@example.com")
            set_password(user, PASSWORD)
            db.session.add(user)
        db.session.commit()


@pytest.mark.parametrize(
    ("email", "channel", "status"),
    [
        (ADMIN, "private-user.12.orders", 403),  # user 1
        (ALICE, "private-user.21.orders", 403),  # user 2
        ("user12@example.com", "private-user.1.orders", 403),
        ("user21@example.com", "private-user.2.orders", 403),
        ("user12@example.com", "private-user.12.orders", 200),
    ],
)
@pytest.mark.usefixtures("users_12_and_21")
def test_user_orders_channel_needs_the_whole_id_not_a_prefix(client, email, channel, status):
    answer = client.post("/broadcasting/auth", headers=login(client, email),
                         data={"socket_id": "1234.5678", "channel_name": channel})
    assert answer.status_code == status, answer.json
