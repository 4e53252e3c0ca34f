"""Turn one benchmark's runs into medians, per-round Resound/soketi ratios and a markdown table.

Absolute numbers on a shared machine are noise; the ratio within one round (the two servers run
back to back) is the figure that carries over, so the table leads with it.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from .scenarios import BY_NAME, Figure


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
        "resound": _revision(),
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "load_average": os.getloadavg(),
    }


def _revision() -> str:
    """The commit measured, and whether the server's code had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "broadcaster", "shared")
    return f"{commit} + uncommitted changes" if dirty else commit


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
    """One row per scenario figure: medians per server and the per-round ratios."""
    rows = []
    for name in dict.fromkeys(run["scenario"] for run in runs):
        scenario = BY_NAME[name]
        mine = [run for run in runs if run["scenario"] == name]
        for figure in scenario.figures:
            rows.append(_row(name, figure, mine))
    return rows


def _row(scenario: str, figure: Figure, runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        value = run.get("figures", {}).get(figure.key)
        if value is not None:
            by_round.setdefault(run["round"], {})[run["server"]] = value
    values = {
        server: [pair[server] for pair in by_round.values() if server in pair]
        for server in ("resound", "soketi")
    }
    ratios = [
        pair["resound"] / pair["soketi"]
        for _, pair in sorted(by_round.items())
        if "resound" in pair and pair.get("soketi")
    ]
    ratio = _median(ratios) if figure.ratio else None
    return {
        "scenario": scenario,
        "figure": figure.key,
        "label": figure.label,
        "resound": _median(values["resound"]),
        "soketi": _median(values["soketi"]),
        "ratios": ratios if figure.ratio else [],
        "ratio": ratio,
        "target": figure.target_text(),
        "met": figure.meets(ratio),
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any],
             runs: list[dict[str, Any]]) -> str:
    """The table the README shows, with when, where and how it was measured."""
    info = meta["machine"]
    lines = [
        f"Measured {info['date']} on {info['nproc']} × {info['cpu']} (Linux {info['kernel']}), "
        f"Python {info['python']}, Node {info['node']}; Resound at {info['resound']}; "
        f"{meta['rounds']} round(s)"
        f"{', quick sizes' if meta['quick'] else ''}. Command: `{meta['command']}`",
        "",
        "| Scenario | Figure | Resound | soketi | Resound/soketi | Per round | Target | Met |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        per_round = ", ".join(f"{ratio:.2f}" for ratio in row["ratios"])
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "—"
        lines.append(
            f"| {row['scenario']} | {row['label']} | {_fmt(row['resound'])} | "
            f"{_fmt(row['soketi'])} | {ratio} | {per_round} | {row['target']} | {met} |"
        )
    lines.append("")
    lines.append("Medians over rounds; the ratio column is the median of the per-round ratios.")
    params = {run["scenario"]: run["params"] for run in runs}
    lines.append("")
    lines.extend(f"- {name}: {BY_NAME[name].describe(p)}" for name, p in params.items())
    notes = [note for run in runs if (note := _trouble(run))]
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def _trouble(run: dict[str, Any]) -> str:
    """A line for a run that failed, lost deliveries, or had connections closed by the server."""
    where = f"round {run['round']} {run['scenario']} on {run['server']}"
    if "error" in run:
        return f"- FAILED {where}: {run['error'][:300]}"
    result = run["result"]
    lost, closes = result.get("incomplete_events", 0), result.get("server_closes", 0)
    if lost or closes:
        return (f"- WARNING {where}: {lost} events did not reach every subscriber; the server "
                f"closed {closes} connections (codes {result.get('server_close_codes')})")
    return ""
