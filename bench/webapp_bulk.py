"""The webapp bench's bulk variant: ``POST /api/orders/transition`` with :data:`PER_REQUEST`
orders per request, on the same stack as the end-to-end scenario (bench/webapp.py).

- **end-to-end, bulk**: ``orders`` pending orders in chunks of :data:`PER_REQUEST`; ``clients``
  admins each take a chunk and walk it through :data:`webapp.PATH`, one request per status
  (each order sends the status it was moved from as ``expected_status``). Transitions per second
  (to the last answer) and frames per second (to the last frame on the admin's socket).
- **100 in one request against 100 requests**: one admin moves 100 fresh orders with 100
  single requests, then 100 others with one bulk request, :data:`ROUNDS` times; the median
  times and their ratio.

Every event must arrive exactly once, each order's in order, as in the single-request run.
"""

from __future__ import annotations

import http.client
import json
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.servers import HOST

from . import webapp  # its helpers, used at run time (webapp imports this module for run())
from .webapp_stack import (
    AdminSubscriber,
    broadcaster,
    database,
    flask,
    gunicorn,
    seed,
    stop,
    webapp_env,
)

PER_REQUEST = 100
ROUNDS = 3
SIZES = {False: {"orders": 1000, "clients": 4, "workers": 2},
         True: {"orders": 400, "clients": 4, "workers": 2}}


class BulkAdmin:
    """One admin's kept HTTP connection to the web app."""

    def __init__(self, base_url: str, token: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, int(base_url.rsplit(":", 1)[1]),
                                                     timeout=60)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.connection.request("POST", path, body=json.dumps(body), headers=self.headers)
        answer = self.connection.getresponse()
        return answer.status, json.loads(answer.read())

    def move(self, order_ids: list[int], previous: str, status: str) -> str | None:
        """Move the orders in one bulk request; why any was not moved, or None."""
        code, body = self.post("/api/orders/transition", {
            "status": status,
            "orders": [{"id": order_id, "expected_status": previous} for order_id in order_ids]})
        refused = [r for r in body.get("results", []) if not r["ok"]] if code == 200 else []
        if code != 200 or refused:
            return f"{len(order_ids)} orders to {status}: {code} {(refused or body)!r:.200}"
        return None

    def move_one(self, order_id: int, previous: str, status: str) -> str | None:
        code, body = self.post(f"/api/orders/{order_id}/transition",
                               {"status": status, "expected_status": previous})
        return None if code == 200 else f"order {order_id} to {status}: {code} {body!r:.200}"

    def close(self) -> None:
        self.connection.close()


def _walk_chunks(admin: BulkAdmin, chunks: queue.Queue, sent: dict, answers: list[float],
                 errors: list[str]) -> None:
    """Walk each chunk from ``chunks`` through PATH: one request per status, each order's send
    time in ``sent``, each answer's arrival in ``answers``."""
    while True:
        try:
            chunk = chunks.get_nowait()
        except queue.Empty:
            break
        previous = "pending"
        for status in webapp.PATH:
            at = time.perf_counter()
            sent.update({(order_id, status): at for order_id in chunk})
            problem = admin.move(chunk, previous, status)
            answers.append(time.perf_counter())
            if problem:
                errors.append(problem)
                return
            previous = status
    admin.close()


def _in_order(frames: list[Any], order_ids: list[int]) -> list[str]:
    """Whose events did not arrive in PATH's order (the first such order)."""
    seen: dict[int, list[str]] = {order_id: [] for order_id in order_ids}
    for frame in frames:
        seen.setdefault(frame.data["order_id"], []).append(frame.data["current_status"])
    for order_id, statuses in seen.items():
        if statuses != list(webapp.PATH):
            return [f"order {order_id}'s events arrived as {statuses}"]
    return []


def _hundred_against_one(admin: BulkAdmin, order_ids: list[int]) -> dict[str, Any]:
    """ROUNDS times: 100 single requests (paid), then one request for 100 others; ms each."""
    singles, bulks, errors = [], [], []
    for round_ids in (order_ids[i:i + 2 * PER_REQUEST]
                      for i in range(0, ROUNDS * 2 * PER_REQUEST, 2 * PER_REQUEST)):
        one_by_one, together = round_ids[:PER_REQUEST], round_ids[PER_REQUEST:]
        started = time.perf_counter()
        errors += [p for p in (admin.move_one(i, "pending", "paid") for i in one_by_one) if p]
        singles.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        errors += [p for p in [admin.move(together, "pending", "paid")] if p]
        bulks.append((time.perf_counter() - started) * 1000)
    single, bulk = statistics.median(singles), statistics.median(bulks)
    return {"single_100_ms": single, "bulk_100_ms": bulk, "ratio_100": single / bulk,
            "rounds": ROUNDS, "errors": errors[:5]}


def end_to_end_bulk(database_url: str | None, quick: bool, out_dir: Path) -> dict[str, Any]:
    size = SIZES[quick]
    comparison = ROUNDS * 2 * PER_REQUEST
    with tempfile.TemporaryDirectory() as work, database(database_url, Path(work)) as url, \
            broadcaster(out_dir / "broadcaster-bulk.log") as server:
        env = webapp_env(url, server.port)
        seed(env)
        order_ids = webapp.make_orders(url, size["orders"])
        spare_ids = webapp.make_orders(url, comparison)
        worker = flask(env, "worker", log=out_dir / "worker-bulk.log")
        try:
            with gunicorn(env, size["workers"], out_dir / "gunicorn-bulk.log") as base_url:
                subscriber = AdminSubscriber(server)
                token = webapp._login(base_url)
                chunks: queue.Queue = queue.Queue()
                for start in range(0, len(order_ids), PER_REQUEST):
                    chunks.put(order_ids[start:start + PER_REQUEST])
                sent: dict[tuple[int, str], float] = {}
                errors: list[str] = []
                answers: list[float] = []
                clients = [threading.Thread(target=_walk_chunks,
                                            args=(BulkAdmin(base_url, token), chunks, sent,
                                                  answers, errors))
                           for _ in range(size["clients"])]
                started = time.perf_counter()
                for client in clients:
                    client.start()
                for client in clients:
                    client.join(webapp.WAIT_SECONDS)
                expected = [(i, status) for i in order_ids for status in webapp.PATH]
                subscriber.wait_for(len(expected), webapp.WAIT_SECONDS)
                time.sleep(webapp.SETTLE_SECONDS)
                frames_seen = len(subscriber.frames)
                one = BulkAdmin(base_url, token)
                against = _hundred_against_one(one, spare_ids)
                one.close()
                subscriber.wait_for(frames_seen + comparison, webapp.WAIT_SECONDS)
                time.sleep(webapp.SETTLE_SECONDS)
                subscriber.close()
        finally:
            stop(worker)
    frames = [f for f in subscriber.frames[:frames_seen] if f.name == "order.status.updated"]
    problems = errors[:5] + webapp._exactly_once(
        frames, expected, lambda f: (f.data["order_id"], f.data["current_status"]))
    problems += [] if problems else _in_order(frames, order_ids)
    late = [f for f in subscriber.frames[frames_seen:] if f.name == "order.status.updated"]
    problems += against.pop("errors") + webapp._exactly_once(
        late, [(i, "paid") for i in spare_ids],
        lambda f: (f.data["order_id"], f.data["current_status"]))
    result: dict[str, Any] = {"scenario": "end-to-end, bulk", "transitions": len(expected),
                              "orders": len(order_ids), "per_request": PER_REQUEST,
                              "clients": size["clients"], "gunicorn_workers": size["workers"],
                              "problems": problems, **against}
    if frames and not problems:
        latencies = [(f.at - sent[(f.data["order_id"], f.data["current_status"])]) * 1000
                     for f in frames]
        seconds = max(f.at for f in frames) - started
        result.update(seconds=seconds, per_second=len(frames) / seconds,
                      transitions_per_second=len(expected) / (max(answers) - started),
                      p50_ms=webapp.report.percentile(latencies, 50),
                      p99_ms=webapp.report.percentile(latencies, 99), max_ms=max(latencies))
    return result


def markdown_lines(results: list[dict]) -> list[str]:
    """The bulk figures beside the single-request ones, for webapp.markdown."""
    bulk = next((r for r in results if r["scenario"] == "end-to-end, bulk"), None)
    single = next((r for r in results if r["scenario"] == "end-to-end"), None)
    if bulk is None or "seconds" not in bulk:
        return []
    lines = ["", f"End-to-end, bulk: {bulk['orders']} orders in requests of "
             f"{bulk['per_request']}, {bulk['clients']} admin clients: "
             f"{bulk['transitions_per_second']:,.0f} transitions/s to the last answer, "
             f"{bulk['per_second']:,.0f} frames/s to the last frame"]
    if single and "per_second" in single:
        lines[-1] += (f"; single requests {single['per_second']:,.0f} frames/s: bulk "
                      f"{bulk['per_second'] / single['per_second']:.1f}x")
    lines[-1] += (f". One admin, 100 orders: 100 single requests {bulk['single_100_ms']:,.0f} "
                  f"ms, one bulk request {bulk['bulk_100_ms']:,.0f} ms, "
                  f"**{bulk['ratio_100']:.1f}x** (median of {bulk['rounds']} rounds).")
    return lines
