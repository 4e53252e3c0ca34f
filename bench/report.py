"""Turn one benchmark's runs into medians, per-round ratios and markdown tables.

Absolute numbers on a shared machine are noise; the ratio within one round (the two sides run
back to back) is the figure that carries over, so the table leads with it. The sides are
Resound and soketi, or two Resound setups (a cluster setup and one process; a history channel
and a plain one); a row keeps each side's median under the side's name, and the setups get a
table per reference side.

A run that lost a delivery, delivered one twice, had a connection closed by the server, did not
finish, or (``--history``) found its channel's history other than its side expects is a failed
run (``failures``): its figures stay out of the medians and ratios, and every target of its
scenario is not met.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from .scenarios import BY_NAME, SOKETI_SIDES, Figure


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            models = (line.split(":", 1)[1].strip() for line in cpuinfo
                      if line.startswith("model name"))
            cpu_model = next(models, cpu_model)
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "resound": revision(),
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "load_average": os.getloadavg(),
    }


def revision() -> str:
    """The full commit measured, and whether the server's or the bench's code had changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "broadcaster", "shared", "bench")
    return f"{commit} + uncommitted changes" if dirty else commit


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (every process, ours included)."""
    return [round(value, 2) for value in os.getloadavg()]


def uptime() -> str:
    """What ``uptime`` prints: the time, and the load averages (every process, ours too)."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def failures(run: dict[str, Any]) -> list[str]:
    """Why a run is a failed run; empty when it counts.

    Every event must reach every subscriber exactly once (the load generator counts first copies
    per subscriber), and no connection may be closed by the server.
    """
    if "error" in run:
        return [f"the run did not finish: {run['error'][:300]}"]
    result = run["result"]
    reasons = []
    missing = result.get("missing_deliveries", 0)
    if missing:
        reasons.append(f"{missing:,} of {result['expected_deliveries']:,} deliveries never "
                       f"arrived ({result['incomplete_events']:,} of {result['events']:,} events "
                       "did not reach every subscriber)")
    duplicates = result.get("duplicate_deliveries", 0)
    if duplicates:
        reasons.append(f"{duplicates:,} deliveries were a second copy to the same subscriber "
                       "(or of an event never sent)")
    closes = result.get("server_closes", 0)
    if closes:
        reasons.append(f"the server closed {closes:,} connections "
                       f"(codes {result.get('server_close_codes')})")
    return reasons + _history_failures(run.get("params", {}).get("history"), result)


def _history_failures(expected: str | None, result: dict[str, Any]) -> list[str]:
    """Why the channel's history, as the load generator read it back after the run, is not
    what ``expected`` says: "kept" (every event published got the next serial, the last ones
    are listed as sent) or "none" (no history: 404); nothing to check without ``expected``."""
    if expected is None:
        return []
    found = result.get("history")
    if found is None:
        return ["the load generator did not read the channel's history back"]
    if expected == "none":
        return [] if found["status"] == 404 else [
            f"the plain channel's history answered HTTP {found['status']}, not 404: it keeps "
            "history, so the run measured no plain channel"]
    if found["status"] != 200:
        return [f"the history channel's history answered HTTP {found['status']}: it keeps none, "
                "so the run measured no history channel"]
    events, serials, seqs = result["events"], found["serials"], found["seqs"]
    reasons = []
    if found["latest"] != events:
        reasons.append(f"the history channel's latest serial is {found['latest']} after "
                       f"{events:,} events published on it")
    if not serials or serials != list(range(events - len(serials) + 1, events + 1)):
        reasons.append(f"the history channel's last events were listed as serials {serials}, "
                       f"not the last of 1 to {events:,}")
    # Concurrent triggers may take serials out of their numbers' order, but each is one event.
    if None in seqs or len(set(seqs)) != len(seqs) or not all(0 < seq <= events for seq in seqs):
        reasons.append(f"the history channel's last events hold {seqs} (by number; None: data "
                       f"that no event sent had), not {len(seqs)} distinct events of 1 to "
                       f"{events:,}")
    return reasons


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1 to 99) of ``values`` (at least two of them)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per scenario figure: medians per server and the per-round ratios, over the runs
    that did not fail; a failed run of a scenario leaves each of its targets not met."""
    rows = []
    for name in dict.fromkeys(run["scenario"] for run in runs):
        scenario = BY_NAME[name]
        mine = [run for run in runs if run["scenario"] == name]
        failed = [f"round {run['round']} on {run['server']}" for run in mine
                  if failures(run)]
        clean = [run for run in mine if not failures(run)]
        loadgen_cpu = {server: _median([run["result"]["loadgen_cpu_pct"] for run in clean
                                        if run["server"] == server
                                        and run["result"].get("loadgen_cpu_pct") is not None])
                       for server in scenario.sides}
        for figure in scenario.figures:
            row = _row(name, figure, clean, scenario.sides)
            row["failed_runs"] = failed
            row["loadgen_cpu_pct"] = loadgen_cpu
            if failed and figure.target is not None:
                row["met"] = False
            rows.append(row)
    return rows


def _row(scenario: str, figure: Figure, runs: list[dict[str, Any]],
         sides: tuple[str, str]) -> dict[str, Any]:
    """Medians and per-round ratios (first side / second) of ``figure`` over ``runs`` (the
    clean runs only)."""
    mine, reference = sides
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        value = run["figures"].get(figure.key)
        if value is not None:
            by_round.setdefault(run["round"], {})[run["server"]] = value
    ratios = [
        pair[mine] / pair[reference]
        for _, pair in sorted(by_round.items())
        if mine in pair and pair.get(reference)
    ]
    ratio = _median(ratios) if figure.ratio else None
    return {
        "scenario": scenario,
        "figure": figure.key,
        "label": figure.label,
        "sides": list(sides),
        **{side: _median([pair[side] for pair in by_round.values() if side in pair])
           for side in sides},
        "ratios": ratios if figure.ratio else [],
        "ratio": ratio,
        "target": figure.target_text(),
        "met": figure.meets(ratio),
    }


def _loads(meta: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """The machine's 1-minute load average over the run, and at its start and end."""
    per_run = [run["load_average"][0] for run in runs if "load_average" in run]
    spread = f", {min(per_run):.2f}–{max(per_run):.2f} as runs began" if per_run else ""
    start, end = meta["machine"]["load_average"], meta.get("load_average_end")
    return (f"Load average (1/5/15 min) {'/'.join(f'{v:.2f}' for v in start)} at the start"
            + (f", {'/'.join(f'{v:.2f}' for v in end)} at the end" if end else "")
            + f" (1 min{spread}); it counts the bench's own server and load generator too.")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any],
             runs: list[dict[str, Any]]) -> str:
    """The tables the README shows (one against soketi, then one per reference side: the cluster
    setups against one process, the setups on a Redis Cluster against one Redis, a history
    channel against a plain one), with when, where and how they were measured."""
    info = meta["machine"]
    lines = [
        f"Measured {info['date']} on {info['nproc']} × {info['cpu']} (Linux {info['kernel']}), "
        f"Python {info['python']}, Node {info['node']}; Resound at {info['resound']}; "
        f"{meta['rounds']} round(s)"
        f"{', quick sizes' if meta['quick'] else ''}. Command: `{meta['command']}`",
        "",
        _loads(meta, runs),
    ]
    soketi_rows = [row for row in rows if tuple(row["sides"]) == SOKETI_SIDES]
    cluster_rows = [row for row in rows if tuple(row["sides"]) != SOKETI_SIDES]
    if soketi_rows:
        lines += ["", "| Scenario | Figure | Resound | soketi | Resound/soketi | Per round "
                  "| Target | Met | Load generator CPU % (Resound / soketi) |",
                  "|---|---|---:|---:|---:|---|---|---|---|",
                  *(_line(row, row["scenario"]) for row in soketi_rows)]
    for reference in dict.fromkeys(row["sides"][1] for row in cluster_rows):
        lines += ["", f"| Scenario (setup) | Figure | Setup | {reference} | Setup/{reference} "
                  f"| Per round | Target | Met | Load generator CPU % (setup / {reference}) |",
                  "|---|---|---:|---:|---:|---|---|---|---|",
                  *(_line(row, f"{row['scenario']} ({row['sides'][0]})")
                    for row in cluster_rows if row["sides"][1] == reference)]
    lines.append("")
    lines.append("Medians over the rounds that did not fail; the ratio column is the median of "
                 "the per-round ratios. Load generator CPU is % of one core, all its threads, "
                 "over the measured window (— where the scenario holds connections idle).")
    params = {run["scenario"]: run["params"] for run in runs}
    lines.append("")
    lines.extend(f"- {name}: {BY_NAME[name].describe(p)}" for name, p in params.items())
    notes = [f"- FAILED round {run['round']} {run['scenario']} on {run['server']}: {reason}"
             for run in runs for reason in failures(run)]
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def _line(row: dict[str, Any], scenario: str) -> str:
    """One table line: both sides' medians, the ratio, the target and the generator's CPU."""
    mine, reference = row["sides"]
    met = {True: "yes", False: "**no**", None: ""}[row["met"]]
    if row["failed_runs"] and row["target"]:
        met += " (failed run)"
    per_round = ", ".join(f"{ratio:.2f}" for ratio in row["ratios"])
    ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "—"
    cpu = row["loadgen_cpu_pct"]
    return (f"| {scenario} | {row['label']} | {_fmt(row[mine])} | {_fmt(row[reference])} | "
            f"{ratio} | {per_round} | {row['target']} | {met} | "
            f"{_fmt(cpu[mine])} / {_fmt(cpu[reference])} |")
