"""``flask --app webapp worker``: the guarantee that every outbox event reaches the broadcaster.

It delivers pending events in order, in batches, on one HTTP connection it keeps open across
passes (opened again after a failure), sleeps briefly when idle, and backs off exponentially
(capped) while the broadcaster is down. SIGTERM (honcho, systemd) ends it between passes, so a
send is never cut off between the broadcaster's answer and its record.
"""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .delivery import ReverbClient, deliver_now

log = logging.getLogger(__name__)


def run_worker(app: Flask, idle: float, backoff_initial: float, backoff_max: float,
               stop: threading.Event) -> None:
    """Loop delivery passes until ``stop`` is set; a pass that raises is logged and retried."""
    client = ReverbClient.from_config(app.config)
    try:
        _loop(app, client, idle, backoff_initial, backoff_max, stop)
    finally:
        client.close()


def _loop(app: Flask, client: ReverbClient, idle: float, backoff_initial: float,
          backoff_max: float, stop: threading.Event) -> None:
    backoff = backoff_initial
    while not stop.is_set():
        try:
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
            stop.wait(idle)


@click.command("worker")
@click.option("--once", is_flag=True,
              help="One pass: deliver what is pending, then exit (status 1 if any is left).")
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
    if once:
        result = deliver_now(app)
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
               stop)
    click.echo("worker: stopped")
