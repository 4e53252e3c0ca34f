"""``python -m bench --webapp``: the order desk's live path, measured on its production stack.

- **end-to-end**: admins move orders through the JSON API under gunicorn as fast as
  ``CLIENTS`` threads can; an admin subscribed to ``private-admin.orders`` times each event.
  Reports transitions per second and the latency from sending the transition request to reading
  its frame (p50, p99, max).
- **drain**: ``DRAIN_EVENTS`` events pending, as after a broadcaster outage; the worker starts
  and the time until the last event arrives is measured, batched on one kept-alive connection
  (the defaults) and one event per request on a new connection each (the path before batching).

A run fails unless every event arrived exactly once, each order's in order (drain: all in order).
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from shared.payloads import dumps
from tests.servers import HOST, WEBAPP_SECRET_KEY

from . import report
from .webapp_stack import (
    ADMIN_CHANNEL,
    AdminSubscriber,
    broadcaster,
    database,
    flask,
    gunicorn,
    seed,
    stop,
    webapp_env,
)

log = logging.getLogger("bench")

PATH = ("paid", "processing", "shipped", "delivered", "refunded")  # a pending order's life
SIZES = {  # (orders, clients, gunicorn workers) and drain events, full and --quick
    False: {"orders": 300, "clients": 4, "workers": 2, "drain": 10_000},
    True: {"orders": 20, "clients": 4, "workers": 2, "drain": 500},
}
DRAIN_MODES = {  # name: (OUTBOX_BATCH_SIZE, OUTBOX_KEEP_ALIVE)
    "batched": ("10", "1"),
    "one per request": ("1", "0"),
}
WAIT_SECONDS = 600  # longest wait for the last event of a run
SETTLE_SECONDS = 1.0  # after the last expected event: time for a duplicate to show


def _app(database_url: str) -> Any:
    from webapp import create_app
    return create_app({"DATABASE_URL": database_url, "SECRET_KEY": WEBAPP_SECRET_KEY,
                       "OUTBOX_DELIVER_ON_COMMIT": False})


def make_orders(database_url: str, count: int) -> list[int]:
    """``count`` pending orders of alice's, written straight to the database (no events)."""
    from webapp.extensions import db
    from webapp.orders.models import Order, OrderItem, User
    from webapp.orders.products import Product
    app = _app(database_url)
    with app.app_context():
        alice = db.session.scalar(db.select(User).where(User.email == "alice@example.com"))
        product = db.session.scalar(db.select(Product).order_by(Product.id))
        orders = [Order(user=alice, total_cents=product.price_cents,
                        items=[OrderItem(product=product, quantity=1,
                                         unit_price_cents=product.price_cents)])
                  for _ in range(count)]
        db.session.add_all(orders)
        db.session.flush()
        for order in orders:
            order.assign_number()
        db.session.commit()
        ids = [order.id for order in orders]
        db.engine.dispose()
    return ids


def add_pending(database_url: str, count: int) -> None:
    """``count`` pending outbox events shaped like an order's, numbered ``n`` 0.."""
    from webapp.broadcasting.events import order_channels, order_payload
    from webapp.broadcasting.outbox import OutboxEvent
    from webapp.extensions import db
    from webapp.orders.models import Order
    app = _app(database_url)
    with app.app_context():
        order = db.session.scalar(db.select(Order).order_by(Order.id))
        payload, channels = order_payload(order, "pending", order.user), order_channels(order)
        rows = [{"name": "order.status.updated", "channels": dumps(channels),
                 "data": dumps({**payload, "n": n})} for n in range(count)]
        for start in range(0, count, 1000):
            db.session.execute(insert(OutboxEvent), rows[start:start + 1000])
        db.session.commit()
        db.engine.dispose()


def _login(base_url: str) -> str:
    connection = http.client.HTTPConnection(HOST, int(base_url.rsplit(":", 1)[1]), timeout=30)
    connection.request("POST", "/api/login", body=json.dumps(
        {"email": "admin@example.com", "password": "password"}),
        headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    token = json.loads(answer.read())["token"]
    connection.close()
    return token


def _admin_client(base_url: str, token: str, orders: queue.Queue, sent: dict,
                  answered: list[float], errors: list[str]) -> None:
    """Walk orders from ``orders`` through :data:`PATH`, timing each request's start (in
    ``sent``) and how long its answer took (ms, in ``answered``)."""
    connection = http.client.HTTPConnection(HOST, int(base_url.rsplit(":", 1)[1]), timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    while True:
        try:
            order_id = orders.get_nowait()
        except queue.Empty:
            break
        for status in PATH:
            sent[(order_id, status)] = time.perf_counter()
            connection.request("POST", f"/api/orders/{order_id}/transition",
                               body=json.dumps({"status": status}), headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            answered.append((time.perf_counter() - sent[(order_id, status)]) * 1000)
            if answer.status != 200:
                errors.append(f"order {order_id} to {status}: {answer.status} {body[:200]!r}")
                return
    connection.close()


def _exactly_once(frames: list[Any], expected: list[tuple], key: Any) -> list[str]:
    """Why ``frames`` are not ``expected`` each exactly once (empty when they are)."""
    seen = Counter(key(frame) for frame in frames)
    problems = []
    missing = set(expected) - set(seen)
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} events never arrived")
    twice = sum(count - 1 for count in seen.values() if count > 1)
    if twice:
        problems.append(f"{twice} events arrived more than once")
    unknown = set(seen) - set(expected)
    if unknown:
        problems.append(f"{len(unknown)} events arrived that were never sent")
    return problems


def end_to_end(database_url: str | None, quick: bool, out_dir: Path) -> dict[str, Any]:
    size = SIZES[quick]
    with tempfile.TemporaryDirectory() as work, database(database_url, Path(work)) as url, \
            broadcaster(out_dir / "broadcaster-e2e.log") as server:
        env = webapp_env(url, server.port)
        seed(env)
        order_ids = make_orders(url, size["orders"])
        worker = flask(env, "worker", log=out_dir / "worker-e2e.log")
        try:
            with gunicorn(env, size["workers"], out_dir / "gunicorn-e2e.log") as base_url:
                admin = AdminSubscriber(server)
                token = _login(base_url)
                orders: queue.Queue = queue.Queue()
                for order_id in order_ids:
                    orders.put(order_id)
                sent: dict[tuple[int, str], float] = {}
                errors: list[str] = []
                answered: list[float] = []
                clients = [threading.Thread(target=_admin_client,
                                            args=(base_url, token, orders, sent, answered,
                                                  errors))
                           for _ in range(size["clients"])]
                started = time.perf_counter()
                for client in clients:
                    client.start()
                for client in clients:
                    client.join(WAIT_SECONDS)
                expected = [(order_id, status) for order_id in order_ids for status in PATH]
                admin.wait_for(len(expected), WAIT_SECONDS)
                time.sleep(SETTLE_SECONDS)
                admin.close()
        finally:
            stop(worker)
    frames = [frame for frame in admin.frames if frame.name == "order.status.updated"]
    problems = errors[:5] + _exactly_once(
        frames, expected, lambda f: (f.data["order_id"], f.data["current_status"]))
    for order_id in order_ids:
        statuses = [f.data["current_status"] for f in frames if f.data["order_id"] == order_id]
        if statuses != list(PATH) and not problems:
            problems.append(f"order {order_id}'s events arrived as {statuses}")
    result: dict[str, Any] = {"scenario": "end-to-end", "transitions": len(expected),
                              "orders": len(order_ids), "clients": size["clients"],
                              "gunicorn_workers": size["workers"], "problems": problems}
    if frames and not problems:
        latencies = [(f.at - sent[(f.data["order_id"], f.data["current_status"])]) * 1000
                     for f in frames]
        seconds = max(f.at for f in frames) - started
        result.update(seconds=seconds, per_second=len(frames) / seconds,
                      p50_ms=report.percentile(latencies, 50),
                      p99_ms=report.percentile(latencies, 99), max_ms=max(latencies),
                      answer_p50_ms=report.percentile(answered, 50),
                      answer_p99_ms=report.percentile(answered, 99))
    return result


def drain(database_url: str | None, quick: bool, out_dir: Path, mode: str) -> dict[str, Any]:
    events = SIZES[quick]["drain"]
    batch_size, keep_alive = DRAIN_MODES[mode]
    with tempfile.TemporaryDirectory() as work, database(database_url, Path(work)) as url, \
            broadcaster(out_dir / f"broadcaster-drain-{batch_size}.log") as server:
        env = webapp_env(url, server.port, {"OUTBOX_BATCH_SIZE": batch_size,
                                            "OUTBOX_KEEP_ALIVE": keep_alive,
                                            "OUTBOX_DELIVER_ON_COMMIT": "0"})
        seed(env)
        add_pending(url, events)
        admin = AdminSubscriber(server)
        started = time.perf_counter()
        worker = flask(env, "worker", log=out_dir / f"worker-drain-{batch_size}.log")
        try:
            admin.wait_for(events, WAIT_SECONDS)
            time.sleep(SETTLE_SECONDS)
        finally:
            stop(worker)
            admin.close()
    numbers = [frame.data["n"] for frame in admin.frames]
    problems = _exactly_once(numbers, list(range(events)), lambda n: n)
    if not problems and numbers != list(range(events)):
        problems.append("events arrived out of order")
    result: dict[str, Any] = {"scenario": f"drain, {mode}", "events": events,
                              "batch_size": int(batch_size), "keep_alive": keep_alive == "1",
                              "problems": problems}
    if numbers and not problems:
        result.update(seconds=admin.frames[-1].at - started,
                      first_event_seconds=admin.frames[0].at - started)
        result["per_second"] = events / result["seconds"]
    return result


def run(database_url: str | None, quick: bool, out_dir: Path) -> tuple[list[dict], bool]:
    """Both scenarios (drain in both modes); the results and whether every run passed."""
    results = []
    log.info("webapp end-to-end (%s)", "PostgreSQL" if database_url else "SQLite")
    results.append(end_to_end(database_url, quick, out_dir))
    for mode in DRAIN_MODES:
        log.info("webapp drain, %s", mode)
        results.append(drain(database_url, quick, out_dir, mode))
    for result in results:
        for problem in result["problems"]:
            log.error("%s FAILED: %s", result["scenario"], problem)
    return results, not any(result["problems"] for result in results)


def markdown(results: list[dict], meta: dict[str, Any]) -> str:
    """The figures as the README shows them."""
    lines = [f"Webapp benchmarks: commit {meta['machine']['resound']}, "
             f"{meta['machine']['nproc']} cores ({meta['machine']['cpu']}), "
             f"database {meta['database']}, {meta['machine']['date']}", "",
             "| scenario | events | time | rate | p50 | p99 | max | exactly once |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        count = r.get("transitions", r.get("events"))
        ok = "yes" if not r["problems"] else "NO: " + "; ".join(r["problems"])
        if "seconds" not in r:
            lines.append(f"| {r['scenario']} | {count:,} | – | – | – | – | – | {ok} |")
            continue
        latency = (f"{r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms"
                   if "p50_ms" in r else "– | – | –")
        lines.append(f"| {r['scenario']} | {count:,} | {r['seconds']:.2f} s | "
                     f"{r['per_second']:,.0f}/s | {latency} | {ok} |")
    drains = {r["scenario"]: r for r in results if "seconds" in r and "events" in r}
    fast, slow = drains.get("drain, batched"), drains.get("drain, one per request")
    if fast and slow:
        lines += ["", f"Drain: batched on one kept-alive connection took "
                  f"{fast['seconds']:.2f} s, one event per request on a new connection each "
                  f"{slow['seconds']:.2f} s: {slow['seconds'] / fast['seconds']:.1f}x faster "
                  f"(both from the worker's start, its ~1 s start-up included; first event "
                  f"after {fast['first_event_seconds']:.2f} s and "
                  f"{slow['first_event_seconds']:.2f} s)."]
    e2e = next((r for r in results if r["scenario"] == "end-to-end"), None)
    if e2e:
        lines += ["", f"End-to-end: {e2e['orders']} orders x {len(PATH)} transitions, "
                  f"{e2e['clients']} admin clients, gunicorn with {e2e['gunicorn_workers']} "
                  f"sync workers, the web processes delivering after commit and the worker "
                  f"running; one admin socket on `{ADMIN_CHANNEL}`."]
        if "answer_p50_ms" in e2e:
            lines[-1] += (f" The transition requests alone (request to HTTP answer) took "
                          f"p50 {e2e['answer_p50_ms']:.1f} ms, p99 {e2e['answer_p99_ms']:.1f} "
                          "ms.")
    return "\n".join(lines)
