"""Who is online and who is looking at which order, as the broadcaster's webhooks report it.

A customer is online while ``private-user.{id}.orders`` is occupied (``channel_occupied`` /
``channel_vacated``), and looking at an order while a member of its presence channel
``presence-orders.{id}.viewers`` (``member_added`` / ``member_removed``). Each fact is one row of
``live_presence`` keyed by channel and user, stamped with the ``time_ms`` of the webhook that set
it: a webhook older than the row, or the same one again, changes nothing. Each change is
broadcast to the admins as an :class:`ActivityChanged` snapshot through the outbox, in the same
transaction.

A webhook can be lost (the broadcaster restarted, the webapp was down past the retries), which
would leave a ghost online for good; so the worker asks the broadcaster now and then
(:func:`expire_unconfirmed`) and marks absent the rows it no longer confirms.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, String, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..orders.models import Order, User
from .events import BroadcastEvent, private_channel
from .outbox import enqueue
from .reverb_client import ReverbClient

CUSTOMER_CHANNEL = re.compile(r"private-user\.(\d+)\.orders")
VIEWERS_CHANNEL = re.compile(r"presence-orders\.(\d+)\.viewers")
CHANNEL_PREFIXES = ("private-user.", "presence-orders.")  # of the two patterns above
OCCUPANCY = {"channel_occupied": True, "channel_vacated": False}
MEMBERSHIP = {"member_added": True, "member_removed": False}
CHANNEL_LEVEL = ""  # the user_id column of a channel's own row (occupancy)
_UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class LivePresence(db.Model):
    __tablename__ = "live_presence"

    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)  # CHANNEL_LEVEL or member
    present: Mapped[bool] = mapped_column(Boolean)
    time_ms: Mapped[int] = mapped_column(BigInteger)  # of the webhook that set ``present``


@dataclass(frozen=True, slots=True)
class Fact:
    """One webhook event this app cares about: ``user_id`` is present on ``channel`` or not."""

    channel: str
    user_id: str
    present: bool


def fact_of(event: dict[str, Any]) -> Fact | None:
    """The fact a webhook event states, or None for events and channels this app ignores."""
    name, channel = event.get("name"), event.get("channel")
    if not isinstance(channel, str):
        return None
    if name in OCCUPANCY and CUSTOMER_CHANNEL.fullmatch(channel):
        return Fact(channel, CHANNEL_LEVEL, OCCUPANCY[name])
    user_id = event.get("user_id")
    if name in MEMBERSHIP and VIEWERS_CHANNEL.fullmatch(channel) and isinstance(user_id, str):
        return Fact(channel, user_id, MEMBERSHIP[name])
    return None


def record(facts: list[Fact], time_ms: int) -> int:
    """Store ``facts`` (in body order: the last about a channel and user wins) unless a row
    already holds a webhook as new or newer; return how many rows changed. Atomic per row (an
    upsert guarded by ``time_ms``), so concurrent webhooks need no lock."""
    latest = {(fact.channel, fact.user_id): fact for fact in facts}
    dialect = db.engine.dialect.name
    if dialect not in _UPSERTS:
        raise RuntimeError(f"live_presence needs SQLite or PostgreSQL (DATABASE_URL), "
                           f"not {dialect}")
    changed = 0
    for fact in latest.values():
        insert = _UPSERTS[dialect](LivePresence).values(
            channel=fact.channel, user_id=fact.user_id, present=fact.present, time_ms=time_ms)
        upsert = insert.on_conflict_do_update(
            index_elements=[LivePresence.channel, LivePresence.user_id],
            set_={"present": insert.excluded.present, "time_ms": insert.excluded.time_ms},
            where=LivePresence.time_ms < insert.excluded.time_ms,
        )
        # preserve_rowcount: SQLAlchemy reports an INSERT's rowcount only when asked (else -1
        # on PostgreSQL)
        changed += db.session.execute(
            upsert, execution_options={"preserve_rowcount": True}).rowcount
    return changed


def expire_unconfirmed(client: ReverbClient, grace_seconds: float) -> int:
    """Mark absent each present row, set more than ``grace_seconds`` ago, that the broadcaster no
    longer confirms: its channel is not occupied (``GET channels``), or, for a member, the
    member is not in the channel (``GET channels/{name}/users``). Broadcast the new view and
    commit; return how many rows changed. Raises ``DeliveryError`` (and changes nothing) when
    the broadcaster cannot answer.

    The rows are read before the broadcaster is asked, and a webhook is sent after the change
    it reports, so the answer covers every row read. A row that a webhook changes meanwhile is
    left as the webhook set it (the update requires the ``time_ms`` read). The grace covers a
    cluster's counts that lag by a moment and clocks that differ a little.
    """
    cutoff_ms = int((time.time() - grace_seconds) * 1000)
    rows = db.session.execute(db.select(
        LivePresence.channel, LivePresence.user_id, LivePresence.time_ms,
    ).where(LivePresence.present, LivePresence.time_ms < cutoff_ms)).all()
    if not rows:
        return 0
    occupied = set().union(*(client.occupied_channels(prefix) for prefix in CHANNEL_PREFIXES))
    members: dict[str, set[str]] = {}
    unconfirmed = []
    for row in rows:
        if row.channel in occupied and row.user_id != CHANNEL_LEVEL and row.channel not in members:
            members[row.channel] = client.channel_members(row.channel)
        if row.channel not in occupied or (
                row.user_id != CHANNEL_LEVEL and row.user_id not in members[row.channel]):
            unconfirmed.append(row)
    changed = 0
    for row in unconfirmed:
        changed += db.session.execute(
            update(LivePresence)
            .where(LivePresence.channel == row.channel, LivePresence.user_id == row.user_id,
                   LivePresence.present, LivePresence.time_ms == row.time_ms)
            .values(present=False).execution_options(synchronize_session=False)).rowcount
    if changed:
        enqueue(ActivityChanged(snapshot()))
    db.session.commit()
    return changed


def _person(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name}


def snapshot() -> dict[str, Any]:
    """``{"online": [user], "viewing": [{user, order_id, order_number}]}``, users as ``{id,
    name}``: what the dashboard shows, sorted by name and then order."""
    rows = db.session.scalars(db.select(LivePresence).where(LivePresence.present)).all()
    online_ids = {int(CUSTOMER_CHANNEL.fullmatch(row.channel)[1])
                  for row in rows if row.user_id == CHANNEL_LEVEL}
    viewing_ids = {(int(row.user_id), int(VIEWERS_CHANNEL.fullmatch(row.channel)[1]))
                   for row in rows if row.user_id != CHANNEL_LEVEL and row.user_id.isdecimal()}
    user_ids = online_ids | {user_id for user_id, _ in viewing_ids}
    users = {u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_(user_ids)))}
    orders = {o.id: o for o in db.session.scalars(
        db.select(Order).where(Order.id.in_({order_id for _, order_id in viewing_ids})))}
    online = sorted((_person(users[i]) for i in online_ids if i in users),
                    key=lambda person: (person["name"], person["id"]))
    viewing = sorted(
        ({"user": _person(users[user_id]), "order_id": order_id,
          "order_number": orders[order_id].order_number}
         for user_id, order_id in viewing_ids if user_id in users and order_id in orders),
        key=lambda view: (view["user"]["name"], view["user"]["id"], view["order_id"]))
    return {"online": online, "viewing": viewing}


class ActivityChanged(BroadcastEvent):
    """The admins' view of who is online and viewing what changed: the whole view, so a late
    or repeated event can only show a state that was true."""

    def __init__(self, view: dict[str, Any]) -> None:
        self.view = view

    def broadcast_on(self) -> list[str]:
        return [private_channel("admin.orders")]

    def broadcast_as(self) -> str:
        return "activity.updated"

    def broadcast_with(self) -> dict[str, Any]:
        return self.view
