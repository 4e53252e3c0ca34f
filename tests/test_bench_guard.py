"""The benchmark cannot be fooled by a server that loses or duplicates deliveries.

The end-to-end tests run ``python -m bench --quick`` on Resound's side only (no soketi), against
the real broadcaster with one fault patched into its process (tests/faulty_broadcaster.py), and
against the real broadcaster unchanged, which must pass the same checks. The cluster scenarios
(``--cluster``, real redis-server) must fail when the nodes do not share presence, and pass on
the real cluster. ``--interest`` must find the broadcast design's bystanders busy and the routed
ones not, and fail a node that keeps a channel's stream after its last subscriber left;
``--channels`` must see one Redis stream per channel and lose nothing under churn; ``--history``
must find every event of a history run kept (and none of a plain run's), fill the windows it
measures, and fail a server that keeps no history.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import interest, report
from bench.servers import resound

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BENCH_TIMEOUT = 100  # seconds (under pytest's 120); a quick fan-out plus latency run takes ~20


def _bench(out: Path, scenarios: str, fault: str | None = None,
           resound_cmd: list[str] | None = None) -> dict[str, Any]:
    """Run the quick bench on Resound only; its exit code and results.json."""
    argv = ["--servers", "resound", "--scenarios", scenarios]
    if fault:
        resound_cmd = [sys.executable, "-m", "tests.faulty_broadcaster", fault]
    if resound_cmd:
        argv += ["--resound-cmd", shlex.join(resound_cmd)]
    return _quick(out, "results.json", *argv)


def _quick(out: Path, results: str, *options: str) -> dict[str, Any]:
    """Run ``python -m bench --quick`` with ``options``; its exit code and the JSON document
    it wrote to ``results``."""
    argv = [sys.executable, "-m", "bench", "--quick", *options, "--out", str(out)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                          timeout=BENCH_TIMEOUT)
    written = out / results
    assert written.exists(), f"the bench wrote no results: {proc.stderr[-2000:]}"
    return {"exit": proc.returncode, "output": proc.stdout + proc.stderr,
            **json.loads(written.read_text())}


def _run(document: dict[str, Any], scenario: str, server: str = "resound") -> dict[str, Any]:
    [run] = [run for run in document["runs"]
             if run["scenario"] == scenario and run["server"] == server]
    assert "error" not in run, run["error"]
    return run


def _row(document: dict[str, Any], scenario: str, figure: str) -> dict[str, Any]:
    [row] = [row for row in document["summary"]
             if row["scenario"] == scenario and row["figure"] == figure]
    return row


def test_a_server_that_drops_a_tenth_of_the_subscribers_fails_the_run(tmp_path: Path) -> None:
    document = _bench(tmp_path, "fanout,latency", fault="drop")

    assert document["exit"] == 1, document["output"]
    for scenario in ("fanout", "latency"):
        result = _run(document, scenario)["result"]
        # Every broadcast skips exactly a tenth of the subscribers (500 and 200 at quick sizes).
        assert result["missing_deliveries"] == result["expected_deliveries"] // 10
        assert result["incomplete_events"] == result["events"]
        assert any("never arrived" in reason
                   for reason in report.failures(_run(document, scenario)))
    # The failed runs stay out of the medians, and the targets are not met.
    rate = _row(document, "fanout", "deliveries_per_s")
    assert rate["resound"] is None
    assert rate["met"] is False
    assert _row(document, "latency", "latency_p99_ms")["met"] is False
    # 10 % of the deliveries never came: they are misses, so the p99 is among them.
    latency = _run(document, "latency")["result"]
    assert latency["latency_p99_ms"] is None
    assert latency["latency_p50_ms"] is not None
    assert "FAILED round 1 fanout on resound" in document["output"]


def test_duplicates_do_not_make_up_for_lost_deliveries(tmp_path: Path) -> None:
    document = _bench(tmp_path, "fanout", fault="swap")

    assert document["exit"] == 1, document["output"]
    result = _run(document, "fanout")["result"]
    # As many frames arrived as a correct server sends; only the per-subscriber count differs.
    assert result["deliveries"] + result["duplicate_deliveries"] == result["expected_deliveries"]
    assert result["duplicate_deliveries"] == result["missing_deliveries"] > 0
    reasons = report.failures(_run(document, "fanout"))
    assert any("second copy" in reason for reason in reasons), reasons
    assert _row(document, "fanout", "deliveries_per_s")["met"] is False


def test_the_real_server_passes_the_same_checks(tmp_path: Path) -> None:
    document = _bench(tmp_path, "fanout,latency")

    assert document["exit"] == 0, document["output"]
    for scenario in ("fanout", "latency"):
        run = _run(document, scenario)
        assert report.failures(run) == []
        assert run["result"]["deliveries"] == run["result"]["expected_deliveries"] > 0
    assert _row(document, "fanout", "deliveries_per_s")["resound"] > 0
    assert _row(document, "latency", "latency_p99_ms")["resound"] is not None


def test_presence_rosters_split_by_node_fail_the_cluster_run(tmp_path: Path) -> None:
    # Scaling forced off: the three nodes share nothing, so each roster covers one node.
    unshared = ["env", "REVERB_SCALING_ENABLED=false", sys.executable, "-m", "broadcaster"]
    document = _bench(tmp_path, "presence-subscribe", resound_cmd=unshared)

    assert document["exit"] == 1, document["output"]
    [run] = [run for run in document["runs"] if run["server"] == "3 nodes on Redis"]
    assert "the largest roster in subscription_succeeded had" in run["error"], run["error"]
    assert report.failures(_run(document, "presence-subscribe", "1 process")) == []
    assert _row(document, "presence-subscribe", "subscribe_p99_ms")["ratio"] is None


def test_the_cluster_setups_pass_the_same_checks(tmp_path: Path) -> None:
    document = _bench(tmp_path, "presence-subscribe,fanout-workers")

    assert document["exit"] == 0, document["output"]
    for scenario, cluster in (("presence-subscribe", "3 nodes on Redis"),
                              ("fanout-workers", "--workers 2 on Redis")):
        for server in (cluster, "1 process"):
            assert report.failures(_run(document, scenario, server)) == []
    workers = _run(document, "fanout-workers", "--workers 2 on Redis")["result"]
    assert workers["deliveries"] == workers["expected_deliveries"] > 0
    # Redis's own CPU, measured in clock ticks (10 ms): a quick run may take less than one.
    assert workers["redis_cpu_seconds"] >= 0
    assert "redis_cpu_seconds" not in _run(document, "fanout-workers", "1 process")["result"]
    cpu = _row(document, "fanout-workers", "cpu_us_per_delivery")
    assert cpu["--workers 2 on Redis"] > 0 and cpu["1 process"] > 0
    assert cpu["ratio"] is not None and cpu["met"] is not None


def _fanout_run(round_no: int, server: str, rate: float, missing: int = 0) -> dict[str, Any]:
    result = {"events": 10, "expected_deliveries": 1000, "deliveries": 1000 - missing,
              "missing_deliveries": missing, "duplicate_deliveries": 0,
              "incomplete_events": 1 if missing else 0, "server_closes": 0,
              "loadgen_cpu_pct": 50.0}
    return {"round": round_no, "scenario": "fanout", "server": server, "result": result,
            "figures": {"deliveries_per_s": rate}}


def test_a_failed_round_is_left_out_of_the_medians_and_its_target_is_not_met() -> None:
    runs = [_fanout_run(1, "resound", 300.0), _fanout_run(1, "soketi", 100.0),
            _fanout_run(2, "resound", 900.0, missing=1), _fanout_run(2, "soketi", 100.0)]

    [row] = [row for row in report.summarize(runs) if row["figure"] == "deliveries_per_s"]

    assert row["resound"] == 300.0
    assert row["ratios"] == [3.0]
    assert row["failed_runs"] == ["round 2 on resound"]
    assert row["met"] is False


def test_a_connection_closed_by_the_server_fails_the_run() -> None:
    run = _fanout_run(1, "resound", 300.0)
    run["result"].update(server_closes=2, server_close_codes=[4100])

    assert report.failures(run) == ["the server closed 2 connections (codes [4100])"]


def test_interest_routing_spares_the_bystanders_that_the_broadcast_design_makes_work(
        tmp_path: Path) -> None:
    document = _quick(tmp_path, "interest.json", "--interest")

    assert document["exit"] == 0, document["output"]
    worst = {}
    for run in document["runs"]:
        assert run["problems"] == [], run
        worst[run["design"]] = run["figures"]["worst bystander / A"]
    old, new = document["designs"]
    # The broadcast design's bystanders decode every publication; routed ones hear none.
    assert worst[old] > 0.2, worst
    assert worst[new] < worst[old] / 4, worst


def test_a_node_that_keeps_a_channel_after_its_last_subscriber_left_fails_the_run(
        tmp_path: Path) -> None:
    faulty = [sys.executable, "-m", "tests.faulty_broadcaster", "hold"]
    with resound(tmp_path, faulty, nodes=3, scaling=True) as cluster:
        record = asyncio.run(interest.measure(cluster, 200, routed=True))

    assert "C's stream subscription outlived its last subscriber" in record["problems"]


def test_many_channels_hold_one_stream_each_and_churn_loses_nothing(tmp_path: Path) -> None:
    document = _quick(tmp_path, "channels.json", "--channels")

    assert document["exit"] == 0, document["output"]
    assert document["problems"] == []
    steps = document["steps"]
    assert [step["channels"] for step in steps] == [0, 2_500, 5_000, 10_000]
    # One stream per channel, plus the app's own and the steady channel's.
    assert [step["redis_streams"] for step in steps] == [2, 2_502, 5_002, 10_002]
    assert steps[-1]["node_rss"] > steps[0]["node_rss"]
    churn = document["with churn"]
    assert churn["subscribed"] == churn["unsubscribed"] > 0
    assert document["without churn"]["lost"] == churn["lost"] == 0


def _history_memory(out: Path) -> dict[str, Any]:
    return {record["setup"]: record
            for record in json.loads((out / "history-memory.json").read_text())["setups"]}


def test_history_runs_keep_every_event_and_the_memory_run_fills_its_windows(
        tmp_path: Path) -> None:
    document = _quick(tmp_path, "results.json", "--history")

    assert document["exit"] == 0, document["output"]
    for run in document["runs"]:
        assert report.failures(run) == [], run
        kept, events = run["result"]["history"], run["result"]["events"]
        if run["params"]["history"] == "kept":  # the history channel's runs
            assert (kept["status"], kept["latest"]) == (200, events) and events > 0, run
            assert kept["serials"] == list(range(events - 4, events + 1)), run
            assert None not in kept["seqs"] and len(set(kept["seqs"])) == 5, run
        else:
            assert kept == {"status": 404}, run
    assert {run["server"] for run in document["runs"]} == {
        "history channel", "plain channel", "plain channel, history rule set",
        "plain channel, no history rule", "history channel, 2 nodes on Redis",
        "plain channel, 2 nodes on Redis"}
    cpu = _row(document, "fanout-history", "cpu_us_per_delivery")
    assert cpu["history channel"] > 0 and cpu["met"] is not None
    memory = _history_memory(tmp_path)
    for setup, record in memory.items():
        assert record["problems"] == [], (setup, record["problems"])
        steps = record["steps"]
        assert [step["events_kept"] for step in steps] == [0, 20_000, 40_000, 80_000]
    one, redis = memory["1 process"]["steps"], memory["1 node on Redis"]["steps"]
    # 80,000 frames of at least 285 bytes each are held by the process, or by Redis.
    assert one[-1]["node_rss"] - one[0]["node_rss"] > 80_000 * 285
    assert redis[-1]["redis_used_memory"] - redis[0]["redis_used_memory"] > 80_000 * 285


def test_a_server_that_keeps_no_history_fails_the_history_run(tmp_path: Path) -> None:
    faulty = [sys.executable, "-m", "tests.faulty_broadcaster", "forget"]
    document = _quick(tmp_path, "results.json", "--history", "--scenarios", "fanout-history",
                      "--resound-cmd", shlex.join(faulty))

    assert document["exit"] == 1, document["output"]
    assert any("it keeps none, so the run measured no history channel" in reason
               for reason in report.failures(_run(document, "fanout-history",
                                                  "history channel")))
    assert report.failures(_run(document, "fanout-history", "plain channel")) == []
    assert _row(document, "fanout-history", "cpu_us_per_delivery")["met"] is False
    for record in _history_memory(tmp_path).values():
        assert any("the history read answered 404" in problem
                   for problem in record["problems"]), record["problems"]
