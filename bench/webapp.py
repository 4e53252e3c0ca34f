"""``python -m bench --webapp``: the order desk's live path, measured on its production stack.

- **end-to-end**: admins move orders through the JSON API under gunicorn as fast as
  ``CLIENTS`` threads can; an admin subscribed to ``private-admin.orders`` times each event.
  Reports transitions per second and the latency from sending the transition request to reading
  its frame (p50, p99, max), and the CPU each process spent per transition.
- **open loop**: :data:`OPEN_RATE` transitions a second on a fixed schedule; the latency from
  each request's scheduled time to its frame.
- **drain**: ``DRAIN_EVENTS`` events pending, as after a broadcaster outage; the worker starts
  and the time until the last event arrives is measured, batched on one kept-alive connection
  (the defaults) and one event per request on a new connection each (the path before batching).

With ``--old-design COMMIT``, end-to-end and open loop run on the webapp of that commit (a
temporary ``git worktree``: seed, gunicorn and the worker start there; the broadcaster, the
harness and the data written are this checkout's) and on this checkout's, alternating round by
round, and the table gives each figure's ratio per round.

A run fails unless every event arrived exactly once, each order's in order (drain: all in order).
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import queue
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from shared.payloads import dumps
from tests.servers import HOST, WEBAPP_SECRET_KEY, Broadcaster

from . import profile, report, webapp_bulk
from .interest import old_checkout
from .webapp_stack import (
    ADMIN_CHANNEL,
    THREADS,
    AdminSubscriber,
    Frame,
    broadcaster,
    connections_per_worker,
    cpu_seconds,
    database,
    flask,
    gunicorn_process,
    seed,
    stop,
    webapp_env,
)

log = logging.getLogger("bench")

PATH = ("paid", "processing", "shipped", "delivered", "refunded")  # a pending order's life
SIZES = {  # orders, admin clients, gunicorn (as the Procfile), drain events, open loop seconds
    False: {"orders": 300, "clients": 4, "workers": 2, "drain": 10_000, "open_seconds": 20},
    True: {"orders": 60, "clients": 4, "workers": 2, "drain": 500, "open_seconds": 6},
}
OPEN_RATE = 50  # transitions per second in the open loop
OPEN_SENDERS = 16  # connections the open loop sends on: enough that none waits for a slot
PROFILED = ("gunicorn", "worker")  # the processes py-spy samples with --webapp-profile
PROFILED_CODE = ("webapp/", "shared/")  # the inclusive figures of their profiles
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


class _Admin:
    """One admin's HTTP connection to the web app, timing the transitions it sends."""

    def __init__(self, base_url: str, token: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, int(base_url.rsplit(":", 1)[1]),
                                                     timeout=30)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def transition(self, order_id: int, status: str) -> str | None:
        """Move the order; why it failed, or None."""
        self.connection.request("POST", f"/api/orders/{order_id}/transition",
                                body=json.dumps({"status": status}), headers=self.headers)
        answer = self.connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            return f"order {order_id} to {status}: {answer.status} {body[:200]!r}"
        return None

    def close(self) -> None:
        self.connection.close()


def _admin_client(admin: _Admin, orders: queue.Queue, sent: dict, answered: list[float],
                  errors: list[str]) -> None:
    """Walk orders from ``orders`` through :data:`PATH`, timing each request's start (in
    ``sent``) and how long its answer took (ms, in ``answered``)."""
    while True:
        try:
            order_id = orders.get_nowait()
        except queue.Empty:
            break
        for status in PATH:
            sent[(order_id, status)] = time.perf_counter()
            problem = admin.transition(order_id, status)
            answered.append((time.perf_counter() - sent[(order_id, status)]) * 1000)
            if problem:
                errors.append(problem)
                return
    admin.close()


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


@dataclass
class _Stack:
    """The running stack of one scenario: the broadcaster, gunicorn's base URL, the processes
    whose CPU is counted, and the orders written for it."""

    server: Broadcaster
    base_url: str
    processes: dict[str, int]  # name: pid (children included)
    order_ids: list[int]

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.processes.items()}


@contextmanager
def _stack(database_url: str | None, orders: int, out_dir: Path, tag: str,
           cwd: Path | None) -> Iterator[_Stack]:
    """A fresh database with ``orders`` pending orders, the broadcaster, gunicorn (the webapp
    of the checkout ``cwd``, default this one) and the outbox worker."""
    size = SIZES[False]
    with tempfile.TemporaryDirectory() as work, database(database_url, Path(work)) as url, \
            broadcaster(out_dir / f"broadcaster-{tag}.log") as server:
        env = webapp_env(url, server.port)
        seed(env, cwd)
        order_ids = make_orders(url, orders)
        worker = flask(env, "worker", log=out_dir / f"worker-{tag}.log", cwd=cwd)
        try:
            with gunicorn_process(env, size["workers"], out_dir / f"gunicorn-{tag}.log",
                                  cwd) as (base_url, web):
                yield _Stack(server, base_url, {"gunicorn": web.pid, "worker": worker.pid,
                                                "broadcaster": server.proc.pid}, order_ids)
        finally:
            stop(worker)


def _delivered(frames: list[Frame], order_ids: list[int], sent: dict[tuple[int, str], float],
               errors: list[str]) -> tuple[list[str], list[float]]:
    """Why the transitions' frames are not each once and in order per order (empty when they
    are), and each frame's latency from its request (ms)."""
    frames = [frame for frame in frames if frame.name == "order.status.updated"]
    expected = [(order_id, status) for order_id in order_ids for status in PATH]
    problems = errors[:5] + _exactly_once(
        frames, expected, lambda f: (f.data["order_id"], f.data["current_status"]))
    for order_id in order_ids:
        statuses = [f.data["current_status"] for f in frames if f.data["order_id"] == order_id]
        if statuses != list(PATH) and not problems:
            problems.append(f"order {order_id}'s events arrived as {statuses}")
    if problems:
        return problems, []
    return [], [(f.at - sent[(f.data["order_id"], f.data["current_status"])]) * 1000
                for f in frames]


def _per_transition(before: dict[str, float], after: dict[str, float],
                    transitions: int) -> dict[str, float]:
    """CPU ms per transition of each process (and all of them)."""
    used = {name: (after[name] - before[name]) * 1000 / transitions for name in before}
    used["total"] = sum(used.values())
    return {f"cpu_ms_{name}": value for name, value in used.items()}


def end_to_end(database_url: str | None, quick: bool, out_dir: Path, cwd: Path | None = None,
               tag: str = "e2e", profile_dir: Path | None = None) -> dict[str, Any]:
    """Closed loop: ``clients`` admins as fast as the answers come. With ``profile_dir``,
    py-spy samples gunicorn's workers and the outbox worker meanwhile."""
    size = SIZES[quick]
    with _stack(database_url, size["orders"], out_dir, tag, cwd) as stack:
        admin = AdminSubscriber(stack.server)
        token = _login(stack.base_url)
        orders: queue.Queue = queue.Queue()
        for order_id in stack.order_ids:
            orders.put(order_id)
        sent: dict[tuple[int, str], float] = {}
        errors: list[str] = []
        answered: list[float] = []
        clients = [threading.Thread(target=_admin_client,
                                    args=(_Admin(stack.base_url, token), orders, sent, answered,
                                          errors))
                   for _ in range(size["clients"])]
        samplers = (profile.sample({name: stack.processes[name] for name in PROFILED},
                                   profile_dir) if profile_dir else [])
        cpu_before = stack.cpu()
        started = time.perf_counter()
        for client in clients:
            client.start()
        # Each admin connects at its first request, as a browser would; read where they landed.
        split = connections_per_worker(stack.processes["gunicorn"],
                                       int(stack.base_url.rsplit(":", 1)[1]), size["clients"])
        for client in clients:
            client.join(WAIT_SECONDS)
        admin.wait_for(len(stack.order_ids) * len(PATH),
                       SETTLE_SECONDS if errors else WAIT_SECONDS)
        cpu_after = stack.cpu()
        profile.stop_all(samplers)
        time.sleep(SETTLE_SECONDS)
        admin.close()
    problems, latencies = _delivered(admin.frames, stack.order_ids, sent, errors)
    transitions = len(stack.order_ids) * len(PATH)
    result: dict[str, Any] = {"scenario": "end-to-end", "transitions": transitions,
                              "orders": len(stack.order_ids), "clients": size["clients"],
                              "gunicorn_workers": SIZES[False]["workers"],
                              "gunicorn_threads": THREADS,
                              "connections_per_worker": "+".join(map(str, split)),
                              "problems": problems}
    if latencies:
        seconds = max(f.at for f in admin.frames) - started
        result.update(seconds=seconds, per_second=transitions / seconds,
                      p50_ms=report.percentile(latencies, 50),
                      p99_ms=report.percentile(latencies, 99), max_ms=max(latencies),
                      answer_p50_ms=report.percentile(answered, 50),
                      answer_p99_ms=report.percentile(answered, 99),
                      **_per_transition(cpu_before, cpu_after, transitions))
    return result


def _open_sender(admin: _Admin, schedule: list[tuple[float, int, str]], slots: Iterator[int],
                 answered: dict[tuple[int, str], threading.Event], errors: list[str],
                 lateness: list[float]) -> None:
    """Send the transitions of the slots it takes, each at its scheduled time (and after its
    order's previous one was answered)."""
    for slot in slots:
        if slot >= len(schedule):
            break
        at, order_id, status = schedule[slot]
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        previous = PATH.index(status) - 1
        if previous >= 0:
            while not answered[(order_id, PATH[previous])].wait(0.1):
                if errors:  # it may never come: stop the run
                    return
        lateness.append((time.perf_counter() - at) * 1000)
        problem = admin.transition(order_id, status)
        if problem:
            errors.append(problem)
            return
        answered[(order_id, status)].set()
    admin.close()


def open_loop(database_url: str | None, quick: bool, out_dir: Path, cwd: Path | None = None,
              tag: str = "open") -> dict[str, Any]:
    """Open loop: :data:`OPEN_RATE` transitions a second on a fixed schedule, whatever the
    answers take (:data:`OPEN_SENDERS` connections); the latency counts from each request's
    scheduled time, so a late send counts against the stack."""
    count = OPEN_RATE * SIZES[quick]["open_seconds"] // len(PATH)  # orders
    with _stack(database_url, count, out_dir, tag, cwd) as stack:
        admin = AdminSubscriber(stack.server)
        token = _login(stack.base_url)
        start = time.perf_counter() + 0.5
        # Slot j moves order j % count: an order's next step comes count / rate seconds later.
        schedule = [(start + slot / OPEN_RATE, stack.order_ids[slot % count],
                     PATH[slot // count]) for slot in range(count * len(PATH))]
        sent = {(order_id, status): at for at, order_id, status in schedule}
        answered = {key: threading.Event() for key in sent}
        errors: list[str] = []
        lateness: list[float] = []
        slots = itertools.count()  # next() on it is atomic: the senders share it
        senders = [threading.Thread(target=_open_sender,
                                    args=(_Admin(stack.base_url, token), schedule, slots,
                                          answered, errors, lateness))
                   for _ in range(OPEN_SENDERS)]
        cpu_before = stack.cpu()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(WAIT_SECONDS)
        admin.wait_for(len(schedule), SETTLE_SECONDS if errors else WAIT_SECONDS)
        cpu_after = stack.cpu()
        time.sleep(SETTLE_SECONDS)
        admin.close()
    problems, latencies = _delivered(admin.frames, stack.order_ids, sent, errors)
    result: dict[str, Any] = {"scenario": f"open loop {OPEN_RATE}/s", "transitions": len(schedule),
                              "orders": count, "rate": OPEN_RATE, "problems": problems}
    if latencies:
        result.update(seconds=max(f.at for f in admin.frames) - start,
                      p50_ms=report.percentile(latencies, 50),
                      p99_ms=report.percentile(latencies, 99), max_ms=max(latencies),
                      late_max_ms=max(lateness),
                      **_per_transition(cpu_before, cpu_after, len(schedule)))
        result["per_second"] = len(schedule) / result["seconds"]
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


def run(database_url: str | None, quick: bool, out_dir: Path,
        profile_dir: Path | None = None) -> tuple[list[dict], bool]:
    """Every scenario on this checkout (drain in both modes); the results and whether every
    run passed."""
    results = []
    log.info("webapp end-to-end (%s)", "PostgreSQL" if database_url else "SQLite")
    results.append(end_to_end(database_url, quick, out_dir, profile_dir=profile_dir))
    log.info("webapp end-to-end, bulk")
    results.append(webapp_bulk.end_to_end_bulk(database_url, quick, out_dir))
    log.info("webapp open loop at %d/s", OPEN_RATE)
    results.append(open_loop(database_url, quick, out_dir))
    for mode in DRAIN_MODES:
        log.info("webapp drain, %s", mode)
        results.append(drain(database_url, quick, out_dir, mode))
    for result in results:
        for problem in result["problems"]:
            log.error("%s FAILED: %s", result["scenario"], problem)
    return results, not any(result["problems"] for result in results)


def compare(database_url: str | None, quick: bool, out_dir: Path, rounds: int,
            old_commit: str) -> tuple[list[dict], list[str], bool]:
    """End-to-end and open loop on the webapp of ``old_commit`` and of this checkout,
    alternating for ``rounds`` rounds; every run (with its ``design`` and ``round``), the two
    designs' names, and whether every run passed."""
    old_name, new_name = old_commit[:7], report.revision()[:7]
    runs = []
    with old_checkout(old_commit) as old_dir:
        for round_no in range(1, rounds + 1):
            for design, cwd in ((old_name, old_dir), (new_name, None)):
                for scenario in (end_to_end, open_loop):
                    log.info("round %d/%d: webapp %s on %s", round_no, rounds,
                             scenario.__name__, design)
                    result = scenario(database_url, quick, out_dir, cwd=cwd,
                                      tag=f"{scenario.__name__}-{design}-{round_no}")
                    result.update(design=design, round=round_no)
                    for problem in result["problems"]:
                        log.error("  FAILED: %s", problem)
                    if "per_second" in result:
                        log.info("  %.1f transitions/s, frame p99 %.1f ms, request p50 %s ms",
                                 result["per_second"], result["p99_ms"],
                                 f"{result['answer_p50_ms']:.1f}" if "answer_p50_ms" in result
                                 else "-")
                    runs.append(result)
    return runs, [old_name, new_name], not any(run["problems"] for run in runs)


COMPARED = (  # (scenario, key, label) in the side-by-side table
    ("end-to-end", "per_second", "transitions/s"),
    ("end-to-end", "answer_p50_ms", "request p50 (ms)"),
    ("end-to-end", "answer_p99_ms", "request p99 (ms)"),
    ("end-to-end", "p50_ms", "request to frame p50 (ms)"),
    ("end-to-end", "p99_ms", "request to frame p99 (ms)"),
    ("end-to-end", "cpu_ms_gunicorn", "gunicorn CPU ms/transition"),
    ("end-to-end", "cpu_ms_worker", "worker CPU ms/transition"),
    ("end-to-end", "cpu_ms_broadcaster", "broadcaster CPU ms/transition"),
    ("end-to-end", "cpu_ms_total", "all three, CPU ms/transition"),
    (f"open loop {OPEN_RATE}/s", "p50_ms", "request to frame p50 (ms)"),
    (f"open loop {OPEN_RATE}/s", "p99_ms", "request to frame p99 (ms)"),
    (f"open loop {OPEN_RATE}/s", "cpu_ms_total", "all three, CPU ms/transition"),
)


def compare_markdown(runs: list[dict], designs: list[str], meta: dict[str, Any]) -> str:
    """The side-by-side table: each design's median, the median of the per-round ratios."""
    old, new = designs
    info = meta["machine"]
    lines = [f"Webapp, {meta['database']}: {old} against {new}, {meta['rounds']} round(s) "
             f"alternating; {info['nproc']} cores ({info['cpu']}), {info['date']}. "
             f"`uptime` at the start: `{meta['uptime_start']}`; at the end: "
             f"`{meta['uptime_end']}`.", "",
             f"| scenario | figure | {old} | {new} | {new}/{old} | per round |",
             "|---|---|---:|---:|---:|---|"]
    for scenario, key, label in COMPARED:
        values = {design: {run["round"]: run[key] for run in runs if run["design"] == design
                           and run["scenario"] == scenario and key in run}
                  for design in designs}
        ratios = [values[new][n] / values[old][n] for n in sorted(values[new])
                  if values[old].get(n)]
        if not ratios:
            continue
        lines.append(f"| {scenario} | {label} | {statistics.median(values[old].values()):,.1f} "
                     f"| {statistics.median(values[new].values()):,.1f} "
                     f"| {statistics.median(ratios):.2f}x "
                     f"| {', '.join(f'{ratio:.2f}' for ratio in ratios)} |")
    splits = {design: [run["connections_per_worker"] for run in sorted(
        (run for run in runs if run["design"] == design and "connections_per_worker" in run),
        key=lambda run: run["round"])] for design in designs}
    if any(splits.values()):
        lines += ["", "End to end, the admins' connections per gunicorn worker, round by round: "
                  + "; ".join(f"{design} {', '.join(splits[design])}" for design in designs)
                  + "."]
    failed = [run for run in runs if run["problems"]]
    lines += ["", f"Runs failed: {len(failed)} of {len(runs)}"
              + "".join(f"; {run['design']} round {run['round']} {run['scenario']}: "
                        f"{'; '.join(run['problems'])}" for run in failed) + "."]
    return "\n".join(lines)


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
                  f"gthread workers of {e2e['gunicorn_threads']} threads and the outbox worker "
                  f"running; one admin socket on `{ADMIN_CHANNEL}`."]
        if "connections_per_worker" in e2e:
            lines[-1] += (f" The admins' connections per gunicorn worker: "
                          f"{e2e['connections_per_worker']}.")
        if "answer_p50_ms" in e2e:
            lines[-1] += (f" The transition requests alone (request to HTTP answer) took "
                          f"p50 {e2e['answer_p50_ms']:.1f} ms, p99 {e2e['answer_p99_ms']:.1f} "
                          "ms.")
    return "\n".join(lines + webapp_bulk.markdown_lines(results))
