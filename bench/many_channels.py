"""``python -m bench --channels``: many channels on one node, and subscription churn.

One node on a redis-server of its own (``REVERB_SCALING_ENABLED``): a node holds a Redis
subscription (sharded pub/sub) per channel it has a subscriber on.

1. **Memory**: :data:`SOCKETS` sockets subscribe :data:`PER_SOCKET` public channels each (the
   default subscription cap), one subscriber per channel, up to 100,000 channels. At 0, 25k,
   50k and 100k channels, once the node is quiet: its RSS, Redis's ``used_memory`` and the
   number of streams Redis holds (``PUBSUB SHARDCHANNELS``); the cost of each step per channel
   shows whether the growth is linear.
2. **Churn**: with the 100,000 channels held, a publisher triggers :data:`STEADY_RATE` events/s
   on a steady channel that one more socket watches, for :data:`CHURN_SECONDS` without churn,
   then as long again while another socket subscribes :data:`CHURN_RATE` new channels per
   second and unsubscribes each once it has succeeded. Reported: the steady channel's delivery
   latency (p50, p99, max) in both phases, the churn achieved and its subscribe-to-succeeded
   latency. A run fails when a steady event is lost or doubled, a subscription fails, or Redis
   still holds churned streams a while after the churn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

import pusher
import redis.asyncio

from tests.servers import HOST

from . import report
from .interest import until_quiet
from .pusher_client import Socket
from .scenarios import MIB
from .servers import APP_ID, APP_KEY, APP_SECRET, RunningServer, resound

log = logging.getLogger("bench")

PER_SOCKET = 1000  # channels per socket: RESOUND_MAX_SUBSCRIPTIONS' default
SIZES = {False: {"channels": 100_000, "seconds": 30.0},
         True: {"channels": 10_000, "seconds": 5.0}}  # by --quick
STEPS = (0, 0.25, 0.5, 1.0)  # fractions of the channels at which memory is read
CHURN_RATE = 1000  # channels subscribed per second (and as many unsubscribed)
CHURN_TICK = 0.01  # seconds between two bursts of churn
CHURN_SOCKETS = 100  # sockets the churn is spread over (10 subscribes/s each)
STEADY_RATE = 50  # events per second on the steady channel
STEADY = "steady"
EVENT = "steady-tick"
LEAK_TIMEOUT = 30.0  # seconds Redis may take to drop the churned streams after the churn


async def _redis_figures(client: redis.asyncio.Redis) -> dict[str, int]:
    memory = await client.info("memory")
    streams = await client.execute_command("PUBSUB", "SHARDCHANNELS")
    return {"redis_used_memory": int(memory["used_memory"]), "redis_streams": len(streams)}


async def _memory_steps(node: RunningServer, client: redis.asyncio.Redis,
                        sockets: list[Socket], channels: int) -> list[dict[str, Any]]:
    """Subscribe the channels (every socket of a step at once); read memory at each step."""
    steps = []
    done = 0
    for fraction in STEPS:
        goal = round(channels * fraction)
        started = time.monotonic()
        await asyncio.gather(*(  # channel n on socket n // PER_SOCKET
            sockets[index].subscribe(f"ch-{n}" for n in range(
                max(done, index * PER_SOCKET), min(goal, (index + 1) * PER_SOCKET)))
            for index in range(done // PER_SOCKET, -(-goal // PER_SOCKET))))
        done = goal
        took = time.monotonic() - started
        await until_quiet(node)
        step = {"channels": done, "node_rss": node.rss_bytes(),
                **await _redis_figures(client)}
        if fraction:
            step["subscribes_per_s"] = (done - steps[-1]["channels"]) / took
        log.info("  %s", step)
        steps.append(step)
    return steps


class SteadyPublisher:
    """Triggers STEADY_RATE events/s on the steady channel from a thread; each carries its
    number and the time it was sent."""

    def __init__(self, node: RunningServer) -> None:
        self.sdk = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host=HOST,
                                 port=node.port, ssl=False)
        self.sent = 0
        self.failed = 0

    def run(self, seconds: float) -> range:
        first = self.sent
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            data = json.dumps({"seq": self.sent, "t": time.monotonic()})
            try:
                self.sdk.trigger(STEADY, EVENT, data)
            except Exception as exc:  # counted and reported: the run fails
                self.failed += 1
                log.error("steady trigger failed: %s", exc)
            self.sent += 1
            time.sleep(max(0.0, started + (self.sent - first) / STEADY_RATE - time.monotonic()))
        return range(first, self.sent)


class Watcher:
    """The steady channel's subscriber: each event's latency, by its number."""

    def __init__(self) -> None:
        self.latency: dict[int, float] = {}
        self.doubled = 0

    def __call__(self, channel: str, event: str, data: Any, arrived: float) -> None:
        if event == EVENT:
            found = json.loads(data)
            if found["seq"] in self.latency:
                self.doubled += 1
            self.latency[found["seq"]] = arrived - found["t"]


async def _until_arrived(watcher: Watcher, seqs: range, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(seq in watcher.latency for seq in seqs):
        await asyncio.sleep(0.05)


class Churn:
    """Subscribes CHURN_RATE new channels a second, in bursts every CHURN_TICK spread over
    CHURN_SOCKETS sockets, and unsubscribes each channel once its subscription has succeeded."""

    def __init__(self, sockets: list[Socket]) -> None:
        self.sockets = sockets
        self.subscribed = 0
        self.unsubscribed = 0
        self.failures: list[str] = []
        self.latency: list[float] = []  # seconds from a subscribe's send to its success
        self._ready: dict[int, list[str]] = {index: [] for index in range(len(sockets))}
        self._bursts: set[asyncio.Task[None]] = set()

    async def _subscribe(self, index: int, channel: str) -> None:
        started = time.monotonic()
        try:
            await self.sockets[index].subscribe([channel])
        except Exception as exc:  # reported; the run fails
            self.failures.append(f"churn socket {index}: {type(exc).__name__}: {exc}")
            return
        self.latency.append(time.monotonic() - started)
        self.subscribed += 1
        self._ready[index].append(channel)

    async def _unsubscribe_ready(self) -> None:
        for index, channels in self._ready.items():
            if channels:
                self._ready[index] = []
                try:
                    await self.sockets[index].unsubscribe(channels)
                except Exception as exc:  # reported; the run fails
                    self.failures.append(f"churn socket {index}: {type(exc).__name__}: {exc}")
                    continue
                self.unsubscribed += len(channels)

    async def run(self, seconds: float) -> None:
        per_tick = round(CHURN_RATE * CHURN_TICK)
        started, tick, n = time.monotonic(), 0, 0
        while time.monotonic() - started < seconds:
            for _ in range(per_tick):
                task = asyncio.create_task(self._subscribe(n % len(self.sockets), f"churn-{n}"))
                self._bursts.add(task)
                task.add_done_callback(self._bursts.discard)
                n += 1
            await self._unsubscribe_ready()
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * CHURN_TICK - time.monotonic()))
        if self._bursts:
            await asyncio.wait(self._bursts)
        await self._unsubscribe_ready()


def _latencies(watcher: Watcher, seqs: range) -> dict[str, Any]:
    values = sorted(1000 * watcher.latency[seq] for seq in seqs if seq in watcher.latency)
    figures: dict[str, Any] = {"events": len(seqs), "lost": len(seqs) - len(values)}
    if len(values) >= 2:
        figures.update(p50_ms=report.percentile(values, 50),
                       p99_ms=report.percentile(values, 99), max_ms=values[-1])
    return figures


def _own_cpu_seconds() -> float:
    """This process's CPU time so far (the sockets, the churn and the publisher)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _phase(node: RunningServer, publisher: SteadyPublisher, watcher: Watcher,
                 seconds: float, churn: Churn | None) -> dict[str, Any]:
    """The steady channel for ``seconds``, with ``churn`` running meanwhile if given."""
    await until_quiet(node)
    cpu, own_cpu = node.cpu_seconds(), _own_cpu_seconds()
    started = time.monotonic()
    publishing = asyncio.create_task(asyncio.to_thread(publisher.run, seconds))
    if churn is not None:
        await churn.run(seconds)
    seqs = await publishing
    wall = time.monotonic() - started
    await _until_arrived(watcher, seqs)
    figures = {**_latencies(watcher, seqs),
               "node_cpu_pct": 100 * (node.cpu_seconds() - cpu) / wall,
               "bench_cpu_pct": 100 * (_own_cpu_seconds() - own_cpu) / wall}
    if churn is not None:
        figures.update(subscribed=churn.subscribed, unsubscribed=churn.unsubscribed,
                       subscribes_per_s=churn.subscribed / wall,
                       unsubscribes_per_s=churn.unsubscribed / wall)
        if len(churn.latency) >= 2:
            waits = sorted(1000 * value for value in churn.latency)
            figures.update(subscribe_p50_ms=report.percentile(waits, 50),
                           subscribe_p99_ms=report.percentile(waits, 99))
    log.info("  %s", figures)
    return figures


async def _streams_settle(client: redis.asyncio.Redis, expected: int) -> int:
    """Wait (up to LEAK_TIMEOUT) for Redis to hold ``expected`` streams; how many it holds."""
    deadline = time.monotonic() + LEAK_TIMEOUT
    while True:
        held = (await _redis_figures(client))["redis_streams"]
        if held == expected or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.2)


async def _measure(node: RunningServer, channels: int, seconds: float) -> dict[str, Any]:
    problems: list[str] = []
    assert node.redis_url is not None
    client = redis.asyncio.Redis.from_url(node.redis_url)
    watcher = Watcher()
    sockets = [await Socket.open(node.ws_url) for _ in range(-(-channels // PER_SOCKET))]
    steady = await Socket.open(node.ws_url, watcher)
    churners = [await Socket.open(node.ws_url) for _ in range(CHURN_SOCKETS)]
    try:
        await steady.subscribe([STEADY])
        steps = await _memory_steps(node, client, sockets, channels)
        publisher = SteadyPublisher(node)
        calm = await _phase(node, publisher, watcher, seconds, None)
        churn = Churn(churners)
        churned = await _phase(node, publisher, watcher, seconds, churn)
        problems.extend(churn.failures[:5])
        held = await _streams_settle(client, steps[-1]["redis_streams"])
        if held != steps[-1]["redis_streams"]:
            problems.append(f"Redis held {held} streams {LEAK_TIMEOUT:.0f} s after the churn, "
                            f"{steps[-1]['redis_streams']} before it")
        for name, phase in (("without churn", calm), ("with churn", churned)):
            if phase["lost"]:
                problems.append(f"{phase['lost']} steady events lost {name}")
        if watcher.doubled:
            problems.append(f"{watcher.doubled} steady events arrived twice")
        if publisher.failed:
            problems.append(f"{publisher.failed} steady triggers failed")
    finally:
        for socket in (*sockets, steady, *churners):
            await socket.close()
        await client.aclose()
    return {"steps": steps, "without churn": calm, "with churn": churned,
            "problems": problems}


def run(out_dir: Path, command: list[str] | None, quick: bool) -> tuple[str, bool]:
    """One run on a fresh node; the markdown table, and whether it passed."""
    size = SIZES[quick]
    record: dict[str, Any] = {"uptime_start": report.uptime(), **size}
    try:
        with resound(out_dir, command, scaling=True) as node:
            record.update(asyncio.run(_measure(node, size["channels"], size["seconds"])))
    except Exception as exc:  # reported, not raised: the table says what failed
        record["problems"] = [f"{type(exc).__name__}: {exc}"]
    record["uptime_end"] = report.uptime()
    record["machine"] = report.machine()
    (out_dir / "channels.json").write_text(json.dumps(record, indent=2))
    table = markdown(record)
    (out_dir / "channels.md").write_text(table + "\n")
    return table, not record["problems"]


def markdown(record: dict[str, Any]) -> str:
    info = record["machine"]
    lines = [
        f"Measured {info['date']} on {info['nproc']} × {info['cpu']} (Linux {info['kernel']}), "
        f"Python {info['python']}; Resound at {info['resound']}; one node on one redis-server; "
        f"{record['channels']:,} public channels, {PER_SOCKET} per socket, one subscriber each.",
        "",
        f"`uptime` at the start: `{record['uptime_start']}`; at the end: "
        f"`{record['uptime_end']}`.",
    ]
    steps = record.get("steps", [])
    if steps:
        lines += ["", "| Channels | node RSS (MiB) | node bytes/channel (this step) | Redis "
                  "used_memory (MiB) | Redis bytes/channel (this step) | streams in Redis | "
                  "subscribes/s |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for before, step in zip([None, *steps[:-1]], steps, strict=True):
            node_step = redis_step = rate = "—"
            if before is not None:
                added = step["channels"] - before["channels"]
                node_step = f"{(step['node_rss'] - before['node_rss']) / added:,.0f}"
                redis_grew = step["redis_used_memory"] - before["redis_used_memory"]
                redis_step = f"{redis_grew / added:,.0f}"
                rate = f"{step['subscribes_per_s']:,.0f}"
            lines.append(f"| {step['channels']:,} | {step['node_rss'] / MIB:.1f} | {node_step} "
                         f"| {step['redis_used_memory'] / MIB:.1f} | {redis_step} | "
                         f"{step['redis_streams']:,} | {rate} |")
    phases = [(name, record[name]) for name in ("without churn", "with churn") if name in record]
    if phases:
        lines += ["", f"Steady channel, {STEADY_RATE} events/s for {record['seconds']:.0f} s "
                  f"per phase; churn: {CHURN_RATE:,} subscribes/s target, each channel "
                  "unsubscribed once it succeeded.", "",
                  "| Phase | latency p50 (ms) | p99 (ms) | max (ms) | lost | subscribes/s | "
                  "unsubscribes/s | subscribe p50 / p99 (ms) | node CPU (% of a core) |",
                  "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        for name, phase in phases:
            lines.append(
                f"| {name} | {_cell(phase, 'p50_ms')} | {_cell(phase, 'p99_ms')} | "
                f"{_cell(phase, 'max_ms')} | {phase['lost']} | {_cell(phase, 'subscribes_per_s')}"
                f" | {_cell(phase, 'unsubscribes_per_s')} | {_cell(phase, 'subscribe_p50_ms')} /"
                f" {_cell(phase, 'subscribe_p99_ms')} | {_cell(phase, 'node_cpu_pct')} |")
    if record["problems"]:
        lines.append("")
        lines.extend(f"- FAILED: {problem}" for problem in record["problems"])
    return "\n".join(lines)


def _cell(figures: dict[str, Any], key: str) -> str:
    value = figures.get(key)
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
