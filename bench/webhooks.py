"""``python -m bench --webhooks``: webhooks off the hot path, measured.

1. The fan-out scenario with occupancy and member webhooks on, against the same without
   (``fanout-webhooks``, through the usual rounds and report).
2. A client-event flood: :data:`SENDERS` sockets, each on a private channel of its own, send
   client events, :data:`RATE` per second together (8 each; Pusher allows 10 per socket), for
   :data:`SECONDS`; a listener subscribed to all those channels reads them. Three
   runs on fresh servers: no webhooks, ``client_event`` webhooks, and the same with batching.
   Reported: the webhook events received and their rate while the flood lasts, how long the
   queue takes to drain after the last client event, the queue's peak (``resound_webhook_queue``
   scraped every 0.1 s), and the client events' latency to the listener, which shows whether the
   webhooks slowed the sockets. A run fails when a webhook is missing or doubled, or a client
   event is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from shared.signatures import sign_channel
from tests.servers import HOST, free_port

from . import report
from .servers import APP_KEY, APP_SECRET, RunningServer, resound

log = logging.getLogger("bench")

SENDERS = 125  # sockets sending client events, each on its own channel (8/s each: Pusher allows 10)
RATE = 1000  # client events per second, all senders together
SECONDS = 10.0
DRAIN_LIMIT = 60.0  # seconds the queue may take to drain before the run fails
SETUPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("webhooks off", {}),
    ("client_event webhooks", {"webhooks": ("client_event",)}),
    ("client_event webhooks, batching", {"webhooks": ("client_event",),
                                         "app": {"webhook_batching": True}}),
)


async def _subscribed(url: str, channels: list[str]) -> Any:
    ws = await connect(url, max_size=None)
    socket_id = json.loads(json.loads(await ws.recv())["data"])["socket_id"]
    for channel in channels:
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": {
            "channel": channel, "auth": sign_channel(APP_KEY, APP_SECRET, socket_id, channel)}}))
    waiting = set(channels)
    while waiting:
        message = json.loads(await ws.recv())
        if message["event"] != "pusher_internal:subscription_succeeded":
            raise RuntimeError(f"subscribing failed: {message}")
        waiting.discard(message["channel"])
    return ws


async def _flood(server: RunningServer, seconds: float) -> dict[str, Any]:
    channels = [f"private-flood-{n}" for n in range(SENDERS)]
    listener = await _subscribed(server.ws_url, channels)
    senders = [await _subscribed(server.ws_url, [channel]) for channel in channels]
    latencies: list[float] = []
    seen: set[int] = set()

    async def listen() -> None:
        async for raw in listener:
            message = json.loads(raw)
            if message["event"] == "client-flood":
                data = json.loads(message["data"])
                latencies.append(time.monotonic() - data["t"])
                seen.add(data["seq"])

    reader = asyncio.create_task(listen())
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        ws, channel = senders[sent % SENDERS], channels[sent % SENDERS]
        await ws.send(json.dumps({"event": "client-flood", "channel": channel, "data": {
            "seq": sent, "t": time.monotonic()}}))
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / RATE - time.monotonic()))
    ended = time.monotonic()
    deadline = ended + 10
    while len(seen) < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    reader.cancel()
    for ws in (listener, *senders):
        await ws.close()
    return {"sent": sent, "flood_started": started, "flood_ended": ended,
            "client_events_received": len(seen), "latencies": latencies}


def _queue_sampler(metrics_port: int) -> tuple[Callable[[], float], threading.Event]:
    """Scrape the webhook queue gauge every 0.1 s from a thread; ``peak()`` so far, and the
    event that stops it."""
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            try:
                with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics",
                                            timeout=2) as answer:
                    text = answer.read().decode()
            except OSError:
                continue
            for family in text_string_to_metric_families(text):
                for found in family.samples:
                    if found.name == "resound_webhook_queue":
                        peak[0] = max(peak[0], found.value)

    threading.Thread(target=sample, name="queue-sampler", daemon=True).start()
    return lambda: peak[0], stop


def measure(server: RunningServer, metrics_port: int, seconds: float) -> dict[str, Any]:
    """One flood on ``server``: its figures, and why it failed (``failures``), if it did."""
    peak, stop = _queue_sampler(metrics_port)
    cpu_before = server.cpu_seconds()
    flood = asyncio.run(_flood(server, seconds))
    record: dict[str, Any] = {"sent": flood["sent"],
                              "client_events_received": flood["client_events_received"]}
    latencies = sorted(flood["latencies"])
    if latencies:
        record["latency_p50_ms"] = 1000 * statistics.median(latencies)
        record["latency_p99_ms"] = 1000 * latencies[int(0.99 * (len(latencies) - 1))]
    failures = []
    if flood["client_events_received"] != flood["sent"]:
        failures.append(f"{flood['sent'] - flood['client_events_received']} client events lost")
    if server.sink is not None:
        deadline = time.monotonic() + DRAIN_LIMIT
        while len(server.sink.events) < flood["sent"] and time.monotonic() < deadline:
            time.sleep(0.05)
        arrivals = list(server.sink.events)
        seqs = [json.loads(event["data"])["seq"] for _, event in arrivals]
        if len(seqs) != len(set(seqs)):
            failures.append(f"{len(seqs) - len(set(seqs))} webhooks doubled")
        if len(set(seqs)) != flood["sent"]:
            failures.append(f"{flood['sent'] - len(set(seqs))} webhooks missing")
        during = [at for at, _ in arrivals if at <= flood["flood_ended"]]
        window = flood["flood_ended"] - flood["flood_started"]
        record["webhook_events"] = len(arrivals)
        record["webhooks_per_s_during_flood"] = len(during) / window
        record["drained_after_s"] = max((at for at, _ in arrivals), default=0.0) - \
            flood["flood_ended"]
    time.sleep(0.3)
    stop.set()
    record["queue_peak"] = peak()
    record["server_cpu_s"] = server.cpu_seconds() - cpu_before
    record["failures"] = failures
    return record


def run(out_dir: Path, command: list[str] | None, seconds: float = SECONDS) -> tuple[str, bool]:
    """Every setup's flood, on a fresh server each; the markdown table, and whether all passed."""
    started = report.load_average()
    rows: list[dict[str, Any]] = []
    for name, options in SETUPS:
        log.info("webhook flood: %s", name)
        metrics_port = free_port()
        app = options.get("app", {})
        record: dict[str, Any] = {"setup": name, "load_average": report.load_average()}
        try:
            with resound(out_dir, command, webhooks=options.get("webhooks", ()), app=app,
                         metrics_port=metrics_port) as server:
                record.update(measure(server, metrics_port, seconds))
        except Exception as exc:  # one failed setup must not lose the others
            record["failures"] = [f"{type(exc).__name__}: {exc}"]
        log.info("  %s", record)
        rows.append(record)
    (out_dir / "webhooks.json").write_text(json.dumps(rows, indent=2))
    table = _markdown(rows, started, report.load_average(), seconds)
    (out_dir / "webhooks.md").write_text(table + "\n")
    return table, all(not row["failures"] for row in rows)


def _cell(row: dict[str, Any], key: str, form: str = "{:.0f}") -> str:
    return form.format(row[key]) if key in row else "—"


def _markdown(rows: list[dict[str, Any]], started: list[float], ended: list[float],
              seconds: float) -> str:
    lines = [
        f"Client-event flood: {SENDERS} sockets, each on a private channel of its own, send "
        f"{RATE} client events/s together for {seconds:.0f} s; a listener on every channel reads "
        f"them. Load average (1/5/15 min) at start {started}, at end {ended}.",
        "",
        "| Setup | client events sent | webhook events | webhooks/s during the flood |"
        " drained after (s) | queue peak | client event latency p50 / p99 (ms) |"
        " server CPU (s) | passed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        passed = "yes" if not row["failures"] else f"**no** ({'; '.join(row['failures'])})"
        lines.append(
            f"| {row['setup']} | {_cell(row, 'sent')} | {_cell(row, 'webhook_events')} | "
            f"{_cell(row, 'webhooks_per_s_during_flood')} | "
            f"{_cell(row, 'drained_after_s', '{:.2f}')} | {_cell(row, 'queue_peak')} | "
            f"{_cell(row, 'latency_p50_ms', '{:.2f}')} / {_cell(row, 'latency_p99_ms', '{:.2f}')}"
            f" | {_cell(row, 'server_cpu_s', '{:.1f}')} | {passed} |")
    return "\n".join(lines)
