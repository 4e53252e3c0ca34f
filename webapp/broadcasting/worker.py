"""``flask --app webapp worker``: the guarantee that every outbox event reaches the broadcaster.

It delivers pending events in order, in batches, on one HTTP connection it keeps open across
passes (opened again after a failure); when idle it waits ``OUTBOX_IDLE_SECONDS``, or, when the
web processes do not deliver (``OUTBOX_DELIVER_ON_COMMIT`` off), until a commit may have written
rows (:mod:`webapp.wakeup`: NOTIFY on PostgreSQL, SQLite's data version); it backs off
exponentially (capped) while the broadcaster is down. SIGTERM (honcho,
systemd) ends it between passes, so a send is never cut off between the broadcaster's answer
and its record.

Before each delivery pass it does the app's chores (:class:`Chores`): it cancels the pending
orders past ``PENDING_ORDER_TTL``; every ``LIVE_PRESENCE_CHECK_SECONDS`` it checks the live
presence table against the broadcaster (what these broadcast goes out in that same pass); and
every :data:`PRUNE_INTERVAL` it deletes the outbox rows sent more than ``OUTBOX_KEEP_SECONDS``
ago.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ..extensions import db
from ..orders.models import ConcurrentChange, Order
from ..orders.placing import expired_pending_orders, expiry_reason
from ..orders.status import OrderStatus
from ..orders.times import utcnow
from .delivery import DeliveryError, ReverbClient, deliver_now
from .outbox import prune_sent
from .presence import expire_unconfirmed
from .unit_of_work import commit
from .wakeup import PASS_GAP_SECONDS, SleepWakeup, Wakeup, worker_wakeup

log = logging.getLogger(__name__)

EXPIRY_INTERVAL = 1.0  # seconds between two looks for expired pending orders (TTL: minutes)
PRUNE_INTERVAL = 60.0  # seconds between two prunes of the outbox that left nothing to delete
PRUNE_BATCHES = 5  # batches of outbox.PRUNE_BATCH rows per prune: a backlog goes between passes


class Chores:
    """What the worker does besides delivery, on the worker's connection to the broadcaster:
    :meth:`run` before each pass. Database errors propagate (the pass backs off); a broadcaster
    that cannot answer the presence check only postpones it."""

    def __init__(self, app: Flask, client: ReverbClient,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.client, self.clock = app, client, clock
        self.presence_interval = float(app.config["LIVE_PRESENCE_CHECK_SECONDS"])
        self.keep_seconds = float(app.config["OUTBOX_KEEP_SECONDS"])
        self.next_presence_check = self.next_expiry = self.next_prune = clock()

    def run(self) -> None:
        """The chores that are due: the pending orders' expiry at most every
        :data:`EXPIRY_INTERVAL` (a worker woken by every commit runs many passes a second), the
        presence check every ``LIVE_PRESENCE_CHECK_SECONDS``, the outbox's prune every
        :data:`PRUNE_INTERVAL` (at the next pass again while a backlog is left)."""
        now = self.clock()
        expire, check = now >= self.next_expiry, now >= self.next_presence_check
        prune = now >= self.next_prune
        if not (expire or check or prune):
            return
        with self.app.app_context():
            try:
                if expire:
                    self.next_expiry = now + EXPIRY_INTERVAL
                    expire_pending_orders(float(self.app.config["PENDING_ORDER_TTL"]))
                if check:
                    self.next_presence_check = now + self.presence_interval
                    self._check_presence()
                if prune:
                    self._prune()
            finally:
                db.session.remove()

    def _prune(self) -> None:
        deleted, more = prune_sent(self.keep_seconds, utcnow(), PRUNE_BATCHES)
        self.next_prune = self.clock() + (0.0 if more else PRUNE_INTERVAL)
        if deleted:
            log.debug("deleted %d outbox rows sent more than %.0f s ago", deleted,
                      self.keep_seconds)

    def _check_presence(self) -> None:
        try:
            expire_unconfirmed(self.client, self.presence_interval)
        except DeliveryError as exc:
            db.session.rollback()
            log.warning("could not check who is online with the broadcaster (%s); next try "
                        "in %.0f s", exc, self.presence_interval)


def expire_pending_orders(ttl_seconds: float) -> int:
    """Cancel the pending orders placed more than ``ttl_seconds`` ago, each in its own commit
    as any transition: a history row with the reason, the stock given back,
    ``order.status.updated`` in the outbox. An order someone moved meanwhile is left as they
    moved it. Returns how many were cancelled."""
    reason = expiry_reason(ttl_seconds)
    cancelled = 0
    for order_id in expired_pending_orders(ttl_seconds):
        order = db.session.get(Order, order_id, populate_existing=True)
        if order is None or order.status is not OrderStatus.PENDING:
            continue  # paid or cancelled since the look
        try:
            events = order.transition_to(OrderStatus.CANCELLED, None, reason)
        except ConcurrentChange:
            log.info("order %s changed while it expired; left as it is", order_id)
            continue
        commit(events)
        cancelled += 1
    return cancelled


def run_worker(app: Flask, idle: float, backoff_initial: float, backoff_max: float,
               stop: threading.Event, wakeup: Wakeup | None = None) -> None:
    """Loop chores and delivery passes until ``stop`` is set; a pass that raises is logged and
    retried. Idle, it waits on ``wakeup`` (default: the database's, :func:`worker_wakeup`)."""
    client = ReverbClient.from_config(app.config)
    if wakeup is None:
        with app.app_context():
            wakeup = worker_wakeup(db.engine)
    try:
        _loop(app, client, Chores(app, client), wakeup, idle, backoff_initial, backoff_max,
              stop)
    finally:
        wakeup.close()
        client.close()


def _loop(app: Flask, client: ReverbClient, chores: Chores, wakeup: Wakeup, idle: float,
          backoff_initial: float, backoff_max: float, stop: threading.Event) -> None:
    backoff = backoff_initial
    started = -PASS_GAP_SECONDS
    while not stop.is_set():
        # Passes start PASS_GAP_SECONDS apart at least: under load each sends the commits of
        # those milliseconds batched, rather than one pass (and its claim) per commit.
        time.sleep(max(0.0, started + PASS_GAP_SECONDS - time.monotonic()))
        started = time.monotonic()
        try:
            chores.run()
            result = deliver_now(app, client)
        except Exception:  # a locked or broken database must not end the guarantee
            log.exception("delivery pass failed, retrying in %.1f s", backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, backoff_max)
            continue
        if result.error:
            log.info("broadcaster unavailable, retrying in %.1f s", backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, backoff_max)
            continue
        backoff = backoff_initial
        if not result.delivered and not result.skipped:
            wakeup.wait(idle, stop)


@click.command("worker")
@click.option("--once", is_flag=True,
              help="One pass: the chores, then deliver what is pending, then exit (status 1 "
                   "if any is left).")
@click.option("--idle", type=float, default=None, help="Seconds to sleep when nothing is pending.")
@click.option("--backoff-max", type=float, default=None,
              help="Longest wait between retries while the broadcaster is down.")
@click.option("--debug", is_flag=True, help="Log every delivery.")
@with_appcontext
def worker_command(once: bool, idle: float | None, backoff_max: float | None,
                   debug: bool) -> None:
    """Deliver outbox events to the broadcaster (the Procfile's worker)."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s worker %(levelname)s %(message)s")
    app = current_app._get_current_object()
    config = app.config
    # With the web processes delivering their own commits, the worker is the guarantee behind
    # them and looks every OUTBOX_IDLE_SECONDS; woken by each commit, it would race them for
    # every batch (a pass per commit, and on PostgreSQL a NOTIFY per commit).
    wakeup = SleepWakeup() if config["OUTBOX_DELIVER_ON_COMMIT"] else None
    config["OUTBOX_DELIVER_ON_COMMIT"] = False  # what the chores enqueue, this pass delivers
    if once:
        client = ReverbClient.from_config(config)
        try:
            Chores(app, client).run()
            result = deliver_now(app, client)
        finally:
            client.close()
        click.echo(f"delivered {result.delivered}, skipped {result.skipped}"
                   + (f", stopped: {result.error}" if result.error else ""))
        raise SystemExit(1 if result.error or result.busy else 0)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"worker: delivering outbox events to {config['REVERB_SCHEME']}://"
               f"{config['REVERB_HOST']}:{config['REVERB_PORT']}")
    run_worker(app,
               idle if idle is not None else config["OUTBOX_IDLE_SECONDS"],
               config["OUTBOX_BACKOFF_INITIAL"],
               backoff_max if backoff_max is not None else config["OUTBOX_BACKOFF_MAX"],
               stop, wakeup)
    click.echo("worker: stopped")
