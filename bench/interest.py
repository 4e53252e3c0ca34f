"""``python -m bench --interest``: what a node pays for channels it has no subscriber on.

Three nodes (A, B, C) share one redis-server (``REVERB_SCALING_ENABLED``); one socket on A is
subscribed to one public channel, and the official ``pusher`` SDK publishes to it through A's
HTTP API (``batch_events`` of :data:`BATCH`). Each node's CPU time (user + system, from /proc)
is read over each publishing window, which ends once A's subscriber has every event and every
node has gone quiet (no node busier than :data:`QUIET_CPU` of a core over :data:`QUIET_STEP`).
Three windows per run:

1. **bystanders**: B and C have no subscriber; their CPU as a fraction of A's is the figure
   (the issue's target: at most 10 %).
2. **C subscribed**: a socket on C subscribes; the next event published must reach it (else
   the run fails); then the same publications, and C's CPU as a fraction of A's.
3. **C left**: that socket unsubscribes (and, with interest routing, Redis shows that only A
   still hears the channel's stream); C must get none of the next publications, and its CPU
   fraction should be back at the bystander level.

The same run on the old design (every node hears every publication: commit :data:`OLD_DESIGN`,
checked out in a temporary ``git worktree`` that is removed afterwards, its nodes started with
that checkout as their working directory) alternates with the current checkout round by round,
so both see the same noise. A run fails when A's subscriber misses or doubles an event, C misses
its first event or hears one after leaving, or a node fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pusher
import redis.asyncio

from broadcaster.cluster.redis_bus import stream_name
from tests.servers import HOST

from . import report
from .pusher_client import Socket
from .servers import APP_ID, APP_KEY, APP_SECRET, RunningServer, resound

log = logging.getLogger("bench")

REPO = Path(__file__).resolve().parents[1]
OLD_DESIGN = "cdb5080"  # the last commit where every node decodes every publication
CHANNEL = "interest-feed"
EVENT = "tick"
BATCH = 10  # events per batch_events request
PUBLICATIONS = {False: 10_000, True: 2_000}  # per window, by --quick
PADDING = "x" * 100  # each event's data carries about this much besides its number
QUIET_STEP = 0.2  # seconds between two readings of the nodes' CPU while waiting for quiet
QUIET_CPU = 0.1  # fraction of a core under which a node counts as quiet
QUIET_LIMIT = 15.0  # seconds to wait for quiet before the window is closed anyway
ARRIVAL_TIMEOUT = 60.0  # seconds the subscribers may take to get a window's last event
LEAVE_TIMEOUT = 10.0  # seconds a node may take to drop a stream after its last subscriber left
TARGET = 0.10  # a bystander's CPU as a fraction of A's, at most (issue 23)
NODES = "ABC"


class Tally:
    """The events one socket received: how many times each sequence number arrived."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self._changed = asyncio.Event()

    def __call__(self, channel: str, event: str, data: Any, arrived: float) -> None:
        if event == EVENT:
            self.counts[json.loads(data)["seq"]] += 1
            self._changed.set()

    async def until(self, seqs: range, timeout: float = ARRIVAL_TIMEOUT) -> bool:
        """Wait until every event of ``seqs`` has arrived; False if some are missing then."""
        with_deadline = time.monotonic() + timeout
        while not all(seq in self.counts for seq in seqs):
            self._changed.clear()
            left = with_deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                return False
        return True

    def missing(self, seqs: range) -> int:
        return sum(1 for seq in seqs if seq not in self.counts)

    def doubled(self) -> int:
        return sum(count - 1 for count in self.counts.values() if count > 1)


class Publisher:
    """The ``pusher`` SDK on A's HTTP API, numbering the events it publishes."""

    def __init__(self, server: RunningServer) -> None:
        self.sdk = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host=HOST,
                                 port=server.port, ssl=False)
        self.next = 0

    def _data(self, seq: int) -> str:
        return json.dumps({"seq": seq, "pad": PADDING})

    async def publish(self, count: int) -> range:
        """Publish ``count`` events in batches; the sequence numbers they carry."""
        seqs = range(self.next, self.next + count)
        self.next += count

        def send() -> None:
            for start in range(seqs.start, seqs.stop, BATCH):
                self.sdk.trigger_batch([
                    {"channel": CHANNEL, "name": EVENT, "data": self._data(seq)}
                    for seq in range(start, min(start + BATCH, seqs.stop))])

        await asyncio.to_thread(send)
        return seqs


async def until_quiet(cluster: RunningServer) -> None:
    """Return once every node spent under QUIET_CPU of a core over one QUIET_STEP (or after
    QUIET_LIMIT seconds: the window then includes whatever it was still doing)."""
    deadline = time.monotonic() + QUIET_LIMIT
    before = cluster.node_cpu_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET_STEP)
        now = cluster.node_cpu_seconds()
        if all(later - earlier <= QUIET_CPU * QUIET_STEP
               for earlier, later in zip(before, now, strict=True)):
            return
        before = now
    log.warning("a node was still busy %.0f s after the last event arrived", QUIET_LIMIT)


async def _window(cluster: RunningServer, publisher: Publisher, count: int,
                  receivers: list[Tally]) -> tuple[dict[str, Any], range, bool]:
    """Publish ``count`` events; every node's CPU seconds over the window, the events' numbers,
    and whether every receiver got them all."""
    await until_quiet(cluster)
    cpu_before, redis_before = cluster.node_cpu_seconds(), cluster.redis_cpu_seconds()
    started = time.monotonic()
    seqs = await publisher.publish(count)
    arrived = all([await tally.until(seqs) for tally in receivers])
    delivered = time.monotonic()
    await until_quiet(cluster)
    cpu_after, redis_after = cluster.node_cpu_seconds(), cluster.redis_cpu_seconds()
    figures = {"publications": count, "seconds_to_last_event": delivered - started,
               "cpu_seconds": [after - before for before, after in zip(cpu_before, cpu_after,
                                                                         strict=True)]}
    if redis_before is not None and redis_after is not None:
        figures["redis_cpu_seconds"] = redis_after - redis_before
    return figures, seqs, arrived


async def _streams_heard(cluster: RunningServer, channel: str) -> int:
    """How many Redis connections hold ``channel``'s stream (sharded pub/sub)."""
    assert cluster.redis_url is not None
    client = redis.asyncio.Redis.from_url(cluster.redis_url)
    try:
        name = stream_name("reverb", APP_ID, channel)
        answer = await client.execute_command("PUBSUB", "SHARDNUMSUB", name)
        return int(answer[1])
    finally:
        await client.aclose()


async def _until_heard_by(cluster: RunningServer, channel: str, count: int) -> bool:
    """Wait (up to LEAVE_TIMEOUT) until exactly ``count`` connections hold the stream."""
    deadline = time.monotonic() + LEAVE_TIMEOUT
    while await _streams_heard(cluster, channel) != count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def measure(cluster: RunningServer, count: int, routed: bool) -> dict[str, Any]:
    """The three windows on one fresh cluster; ``routed``: the design has a stream per
    channel (then Redis is asked who hears it)."""
    problems: list[str] = []
    at_a, at_c = Tally(), Tally()
    publisher = Publisher(cluster)
    a = await Socket.open(cluster.ws_urls[0], at_a)
    c = await Socket.open(cluster.ws_urls[2], at_c)
    try:
        await a.subscribe([CHANNEL])
        warm = await publisher.publish(BATCH)  # connections and code paths warmed up
        if not await at_a.until(warm):
            problems.append("the warm-up events never reached A's subscriber")
        windows: dict[str, dict[str, Any]] = {}
        windows["bystanders"], seqs, arrived = await _window(cluster, publisher, count, [at_a])
        if not arrived:
            problems.append(f"{at_a.missing(seqs)} events never reached A's subscriber")

        await c.subscribe([CHANNEL])
        first = await publisher.publish(1)
        if not await at_c.until(first):
            problems.append("C's new subscriber did not get the channel's next event")
        windows["C subscribed"], seqs, arrived = await _window(cluster, publisher, count,
                                                               [at_a, at_c])
        if not arrived:
            problems.append(f"{at_a.missing(seqs)} events never reached A's subscriber, "
                            f"{at_c.missing(seqs)} C's")

        await c.unsubscribe([CHANNEL])
        await c.round_trip()
        if routed and not await _until_heard_by(cluster, CHANNEL, 1):
            problems.append("C's stream subscription outlived its last subscriber")
        heard_by_c = len(at_c.counts)
        windows["C left"], seqs, arrived = await _window(cluster, publisher, count, [at_a])
        if not arrived:
            problems.append(f"{at_a.missing(seqs)} events never reached A's subscriber")
        if len(at_c.counts) != heard_by_c:
            problems.append(f"C's socket got {len(at_c.counts) - heard_by_c} events after "
                            "unsubscribing")
        for where, tally in (("A", at_a), ("C", at_c)):
            if tally.doubled():
                problems.append(f"{tally.doubled()} events arrived twice at {where}")
    finally:
        await a.close()
        await c.close()
    return {"windows": windows, "problems": problems}


def _fractions(run: dict[str, Any]) -> dict[str, float | None]:
    """The run's figures: each node's CPU as a fraction of A's, A's cost per publication."""
    windows = run["windows"]
    figures: dict[str, float | None] = {}

    def share(window: str, node: int) -> float | None:
        cpu = windows[window]["cpu_seconds"]
        return cpu[node] / cpu[0] if cpu[0] > 0 else None

    figures["B / A"] = share("bystanders", 1)
    figures["C / A"] = share("bystanders", 2)
    shares = [figures["B / A"], figures["C / A"]]
    figures["worst bystander / A"] = max(shares) if None not in shares else None
    figures["C / A, C subscribed"] = share("C subscribed", 2)
    figures["C / A, after C left"] = share("C left", 2)
    first = windows["bystanders"]
    figures["A CPU µs per publication"] = first["cpu_seconds"][0] * 1e6 / first["publications"]
    figures["bystander CPU µs per publication"] = (
        statistics.mean(first["cpu_seconds"][1:]) * 1e6 / first["publications"])
    if "redis_cpu_seconds" in first:
        figures["redis-server CPU µs per publication"] = (
            first["redis_cpu_seconds"] * 1e6 / first["publications"])
    figures["publications/s"] = first["publications"] / first["seconds_to_last_event"]
    return figures


@contextmanager
def old_checkout(commit: str) -> Iterator[Path]:
    """A temporary ``git worktree`` of ``commit`` (detached, never committed to), removed
    after."""
    path = Path(tempfile.mkdtemp(prefix=f"resound-{commit}-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                    str(path), commit], check=True, capture_output=True, text=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       check=False, capture_output=True)


def run(out_dir: Path, command: list[str] | None, rounds: int, quick: bool,
        old_commit: str = OLD_DESIGN) -> tuple[str, bool]:
    """Alternate the old design and this checkout for ``rounds`` rounds; the markdown table,
    and whether every run passed and the target was met."""
    count = PUBLICATIONS[quick]
    old_name, new_name = f"broadcast ({old_commit})", f"interest routing ({report.revision()[:7]})"
    runs: list[dict[str, Any]] = []
    uptime_start = report.uptime()
    with old_checkout(old_commit) as old_dir:
        for round_no in range(1, rounds + 1):
            for name, cwd, routed in ((old_name, old_dir, False), (new_name, None, True)):
                log.info("round %d/%d: interest on %s", round_no, rounds, name)
                record: dict[str, Any] = {"round": round_no, "design": name,
                                          "uptime": report.uptime()}
                try:
                    with resound(out_dir, command, nodes=3, scaling=True, cwd=cwd) as cluster:
                        record.update(asyncio.run(measure(cluster, count, routed)))
                    record["figures"] = _fractions(record)
                except Exception as exc:  # one failed run must not lose the others
                    record["problems"] = [f"{type(exc).__name__}: {exc}"]
                for problem in record["problems"]:
                    log.error("  FAILED: %s", problem)
                if "figures" in record:
                    log.info("  %s", ", ".join(f"{key} {value:.3g}" for key, value
                                               in record["figures"].items()
                                               if value is not None))
                runs.append(record)
    meta = {"machine": report.machine(), "uptime_start": uptime_start,
            "uptime_end": report.uptime(), "publications": count, "rounds": rounds,
            "designs": [old_name, new_name]}
    (out_dir / "interest.json").write_text(json.dumps({**meta, "runs": runs}, indent=2))
    table, met = markdown(runs, meta)
    (out_dir / "interest.md").write_text(table + "\n")
    return table, met and all(not run["problems"] for run in runs)


def _medians(runs: list[dict[str, Any]], design: str, key: str) -> tuple[float | None,
                                                                         list[float]]:
    values = [run["figures"][key] for run in runs
              if run["design"] == design and not run["problems"]
              and run["figures"].get(key) is not None]
    return (statistics.median(values) if values else None), values


def markdown(runs: list[dict[str, Any]], meta: dict[str, Any]) -> tuple[str, bool]:
    """The table (figures by design: medians, then each round's), and whether the interest
    routing design met the target."""
    old, new = meta["designs"]
    info = meta["machine"]
    keys = list(dict.fromkeys(key for run in runs for key in run.get("figures", {})))
    lines = [
        f"Measured {info['date']} on {info['nproc']} × {info['cpu']} (Linux {info['kernel']}), "
        f"Python {info['python']}; Resound at {info['resound']}; {meta['rounds']} round(s) of "
        f"each design, alternating; {meta['publications']:,} publications per window "
        f"(batch_events of {BATCH}) through A's HTTP API, one subscriber on A.",
        "",
        f"`uptime` at the start: `{meta['uptime_start']}`; at the end: `{meta['uptime_end']}`.",
        "",
        f"| Figure | {old} | {new} | per round ({old}) | per round ({new}) | Target | Met |",
        "|---|---:|---:|---|---|---|---|",
    ]
    met = False
    for key in keys:
        old_median, old_values = _medians(runs, old, key)
        new_median, new_values = _medians(runs, new, key)
        target, verdict = "", ""
        if key == "worst bystander / A":
            met = new_median is not None and new_median <= TARGET
            target, verdict = f"<= {TARGET:.2f}", "yes" if met else "**no**"
        lines.append(f"| {key} | {_fmt(old_median)} | {_fmt(new_median)} | "
                     f"{', '.join(map(_fmt, old_values))} | {', '.join(map(_fmt, new_values))} "
                     f"| {target} | {verdict} |")
    a_cpu = [run["windows"]["bystanders"]["cpu_seconds"][0] for run in runs
             if run.get("windows")]
    tick = 1 / os.sysconf("SC_CLK_TCK")
    lines.append("")
    lines.append("Medians over the runs that did not fail. Fractions are CPU seconds (user + "
                 "system) over the same window; the window runs from the first publication to "
                 "the moment every node is quiet again after the last one arrived. The kernel "
                 f"counts CPU time in ticks of {tick * 1000:g} ms"
                 + (f", {tick / min(a_cpu):.3f} of A's CPU at most in these runs: 0 means "
                    "less than one tick" if a_cpu and min(a_cpu) > 0 else "") + ".")
    lines.extend(f"- round {run['round']}, {run['design']}: `{run['uptime']}`" for run in runs)
    failed = [f"- FAILED round {run['round']} {run['design']}: {problem}"
              for run in runs for problem in run["problems"]]
    if failed:
        lines.append("")
        lines.extend(failed)
    return "\n".join(lines), met


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
