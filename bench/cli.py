"""``python -m bench``: run the scenarios against Resound and soketi in alternation, then report.

Every round runs each scenario on Resound and then on soketi, each on a fresh server process,
so the two numbers of one round were measured seconds apart on the same machine. ``--cluster``
runs the cluster scenarios instead: a Resound cluster setup (nodes or workers on a throwaway
redis-server) and then one Resound process without scaling, alternating the same way (with
``--redis cluster``, the setup on a throwaway Redis Cluster and then on one redis-server);
``--metrics`` one Resound process with metrics on and then one without; ``--webhooks`` the
same with webhooks, then the client-event flood of :mod:`bench.webhooks`; ``--history``
fan-out on a history channel and then on a plain one (and a plain channel with a history
rule set and then without), then the memory of kept events (:mod:`bench.history`). A run that
loses or duplicates a delivery, or whose server closes a connection, fails: it is left out of
the medians, its scenario's targets are not met, and the command exits with 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shlex
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from . import abuse, history, interest, loadgen, many_channels, profile, report, webapp, webhooks
from .scenarios import (
    BY_NAME,
    CLUSTER_SCENARIOS,
    HISTORY_SCENARIOS,
    METRICS_SCENARIOS,
    REDIS_CLUSTER_SCENARIOS,
    SCENARIOS,
    WEBHOOK_SCENARIOS,
    Scenario,
)
from .servers import CLUSTER_LAUNCHERS, LAUNCHERS, SERVERS, Launcher

RESULTS = Path(__file__).with_name("results")
FILE_LIMIT = 30_000  # 10,000 connections plus headroom, for the servers and the load generator
RUN_TIMEOUT = 180  # seconds one load-generator run may take before its watchdog ends it

log = logging.getLogger("bench")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of every scenario on every server (default 3, --quick 1)")
    parser.add_argument("--scenarios", default=None,
                        help=f"comma-separated, from: {', '.join(BY_NAME)} (default: every "
                             "scenario against soketi, or with --cluster / --metrics every "
                             "one of those)")
    parser.add_argument("--cluster", action="store_true",
                        help="run the cluster scenarios (Resound on Redis, nodes or --workers, "
                             "against one Resound process) by default instead of the soketi ones")
    parser.add_argument("--redis", default="single",
                        help="with --cluster: comma-separated, from: single (each setup on one "
                             "redis-server against one process), cluster (each setup on a Redis "
                             "Cluster of 3 masters and 3 replicas against the same setup on one "
                             "redis-server); 'single,cluster' runs both in each round "
                             "(default single)")
    parser.add_argument("--metrics", action="store_true",
                        help="run fan-out and handshakes with metrics on (scraped every second) "
                             "against metrics off, one Resound process each, by default")
    parser.add_argument("--webhooks", action="store_true",
                        help="run fan-out with occupancy webhooks on against off, then a flood "
                             "of 1,000 client events/s with client_event webhooks (off, on, "
                             "batched): queue peak, drain time, webhooks/s, latency")
    parser.add_argument("--history", action="store_true",
                        help="run fan-out on a history channel against a plain one (one "
                             "process, and 2 nodes on Redis) and a plain channel with a history "
                             "rule set against none, then fill 10,000 history channels with 100 "
                             "events each: node RSS and Redis memory per kept event")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated, from: resound, soketi (the cluster scenarios "
                             "always run both their setups)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: the whole run finishes in about a minute")
    parser.add_argument("--profile", metavar="SCENARIOS", default="",
                        help="after the rounds, profile Resound under these scenarios (py-spy; "
                             "a cluster scenario on its cluster setup), e.g. fanout,handshakes")
    parser.add_argument("--resound-cmd", metavar="COMMAND", type=shlex.split, default=None,
                        help="the command that starts Resound, followed by "
                             "`start --host H --port P` (default: this Python's "
                             "`-m broadcaster`)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=None,
                        help="write results.json, table.md and the server logs here "
                             "(default: bench/results/<UTC time>)")
    parser.add_argument("--abuse", action="store_true",
                        help="run the abuse attacks (pipelined non-reader, slowloris, large "
                             "unsigned bodies, ping flood, slow consumers) instead: peak and "
                             "retained RSS, and whether a normal client is still served")
    parser.add_argument("--abuse-seconds", type=float, default=15.0,
                        help="how long each abuse attack lasts (default 15)")
    parser.add_argument("--attacks", default="",
                        help="with --abuse: comma-separated attacks to run (default: all), "
                             f"from: {', '.join(attack.name for attack in abuse.ATTACKS)}")
    parser.add_argument("--webapp", action="store_true",
                        help="run the webapp benchmarks instead: transitions through the API "
                             "under gunicorn to an admin socket, and draining 10,000 pending "
                             "events batched against one per request (about 5 minutes)")
    parser.add_argument("--database-url", default=None,
                        help="with --webapp: a PostgreSQL server URL on which the bench may "
                             "create (and drop) its databases; default: SQLite files")
    parser.add_argument("--interest", action="store_true",
                        help="run the interest-routing scenario instead: three nodes on "
                             "Redis, one subscriber on node A, publications through A; each "
                             "bystander node's CPU as a fraction of A's, against the old "
                             "broadcast design (--old-design) in alternating rounds")
    parser.add_argument("--old-design", metavar="COMMIT", default=None,
                        help="with --interest: the commit of the broadcast design, checked "
                             f"out in a temporary git worktree (default {interest.OLD_DESIGN}); "
                             "with --webapp: run end-to-end and the open loop on the webapp of "
                             "COMMIT and of this checkout, alternating for --rounds rounds "
                             "(e.g. cdb5080)")
    parser.add_argument("--webapp-profile", action="store_true",
                        help="with --webapp: py-spy samples the gunicorn workers and the outbox "
                             "worker during end-to-end (raw stacks and a summary in the results "
                             "directory)")
    parser.add_argument("--channels", action="store_true",
                        help="run the many-channels scenario instead: one node on Redis, "
                             "100,000 channels with a subscriber each (RSS and Redis memory "
                             "at 0, 25k, 50k, 100k), then 1,000 subscribes and unsubscribes/s "
                             "for 30 s against a steady channel's delivery latency")
    parser.add_argument("--debug", action="store_true", help="log every step")
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    on_redis = {"single": CLUSTER_SCENARIOS, "cluster": REDIS_CLUSTER_SCENARIOS}
    redis_modes = _choose(parser, args.redis, on_redis, "Redis mode") if args.cluster else []
    paired = zip(*(on_redis[mode] for mode in redis_modes), strict=True)  # alternate the modes
    default = ((*(scenario for pair in paired for scenario in pair),
                *(METRICS_SCENARIOS if args.metrics else ()),
                *(WEBHOOK_SCENARIOS if args.webhooks else ()),
                *(HISTORY_SCENARIOS if args.history else ())) or SCENARIOS)
    args.scenario_list = _choose(parser, args.scenarios or ",".join(s.name for s in default),
                                 BY_NAME, "scenario")
    args.server_list = _choose(parser, args.servers, LAUNCHERS, "server")
    args.profile_list = _choose(parser, args.profile, BY_NAME, "scenario") if args.profile else []
    args.attack_list = _choose(parser, args.attacks, {a.name: a for a in abuse.ATTACKS},
                               "attack") if args.attacks else []
    if args.rounds < 0 or (args.rounds == 0 and not args.profile):
        parser.error("--rounds must be at least 1 (or 0 with --profile)")
    return args


def _choose(parser: argparse.ArgumentParser, text: str, known: dict[str, Any],
            what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"unknown {what} {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(known)}")
    return names


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILE_LIMIT if hard == resource.RLIM_INFINITY else min(FILE_LIMIT, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < 11_000:
        log.warning("open-file limit is %d; the 10,000-connection scenario may fail", wanted)


def run_one(scenario: Scenario, server_name: str, launcher: Launcher, round_no: int,
            quick: bool, log_dir: Path) -> dict[str, Any]:
    """One scenario on one fresh server; failures are recorded, not raised."""
    params = scenario.params(server_name, quick)
    record: dict[str, Any] = {"round": round_no, "scenario": scenario.name,
                              "server": server_name, "params": params,
                              "load_average": report.load_average()}
    try:
        with launcher(log_dir) as server:
            result = loadgen.run(server, scenario.loadgen, params, RUN_TIMEOUT)
        record["result"] = result
        record["figures"] = {figure.key: figure.compute(result) for figure in scenario.figures}
    except Exception as exc:  # one failed run must not lose the others
        record["error"] = str(exc)
    for reason in report.failures(record):
        log.error("round %d %s on %s FAILED: %s", round_no, scenario.name, server_name, reason)
    return record


def _profile(name: str, quick: bool, out_dir: Path) -> dict[str, Any] | None:
    log.info("profiling resound under %s", name)
    try:
        return profile.profile(name, quick, out_dir, RUN_TIMEOUT)
    except Exception as exc:  # the measured rounds are already in hand; keep them
        log.error("profiling %s failed: %s", name, exc)
        return None


def _webapp(args: argparse.Namespace, out_dir: Path) -> int:
    meta = {"machine": report.machine(), "uptime_start": report.uptime(),
            "database": "PostgreSQL" if args.database_url else "SQLite", "rounds": args.rounds}
    if args.old_design:
        results, designs, ok = webapp.compare(args.database_url, args.quick, out_dir,
                                              args.rounds, args.old_design)
        meta["uptime_end"] = report.uptime()
        table = webapp.compare_markdown(results, designs, meta)
    else:
        profile_dir = out_dir / "profile" if args.webapp_profile else None
        results, ok = webapp.run(args.database_url, args.quick, out_dir, profile_dir)
        meta["uptime_end"] = report.uptime()
        table = webapp.markdown(results, meta)
        if profile_dir:
            table += "\n\n" + "\n\n".join(
                f"{raw.stem}:\n\n" + profile.top_table(
                    profile.summarize(raw.read_text(), webapp.PROFILED_CODE))
                for raw in sorted(profile_dir.glob("*.raw")))
    (out_dir / "webapp.json").write_text(json.dumps({**meta, "results": results}, indent=2))
    (out_dir / "table.md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {out_dir / 'webapp.json'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    _raise_file_limit()
    started = datetime.now(UTC)
    out_dir = args.out or RESULTS / started.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    launchers: dict[str, Launcher] = {
        **LAUNCHERS,
        **{name: partial(launcher, command=args.resound_cmd)
           for name, launcher in {"resound": LAUNCHERS["resound"], **CLUSTER_LAUNCHERS}.items()},
    }
    if args.webapp:
        return _webapp(args, out_dir)
    if args.abuse:
        table, ok = abuse.run(args.server_list, launchers, out_dir, args.abuse_seconds,
                              args.attack_list)
        print(table)
        print(f"\nresults: {out_dir / 'abuse.json'}")
        return 0 if ok else 1
    if args.interest:
        table, ok = interest.run(out_dir, args.resound_cmd, args.rounds, args.quick,
                                 args.old_design or interest.OLD_DESIGN)
        print(table)
        print(f"\nresults: {out_dir / 'interest.json'}")
        return 0 if ok else 1
    if args.channels:
        table, ok = many_channels.run(out_dir, args.resound_cmd, args.quick)
        print(table)
        print(f"\nresults: {out_dir / 'channels.json'}")
        return 0 if ok else 1
    command = shlex.join([os.path.relpath(sys.executable), "-m", "bench",
                          *(sys.argv[1:] if argv is None else argv)])
    meta = {"machine": report.machine(), "rounds": args.rounds, "quick": args.quick,
            "command": command, "servers": args.server_list}
    runs: list[dict[str, Any]] = []
    for round_no in range(1, args.rounds + 1):
        for name in args.scenario_list:
            scenario = BY_NAME[name]
            sides = scenario.sides if scenario.cluster else args.server_list
            for server_name in sides:
                log.info("round %d/%d: %s on %s", round_no, args.rounds, name, server_name)
                record = run_one(scenario, server_name, launchers[server_name],
                                 round_no, args.quick, out_dir)
                runs.append(record)
                if "figures" in record:
                    log.info("  %s", ", ".join(f"{key} {value:.4g}" for key, value
                                             in record["figures"].items() if value is not None))
    meta["load_average_end"] = report.load_average()
    rows = report.summarize(runs)
    document: dict[str, Any] = {**meta, "runs": runs, "summary": rows}
    document["profiles"] = [found for found in (_profile(name, args.quick, out_dir)
                                                for name in args.profile_list) if found]
    parts = [report.markdown(rows, meta, runs)] if runs else []
    parts.extend(profile.markdown(found) for found in document["profiles"])
    flood_ok = True
    if args.webhooks:
        flood, flood_ok = webhooks.run(out_dir, args.resound_cmd, 2.0 if args.quick
                                       else webhooks.SECONDS)
        parts.append(flood)
    history_ok = True
    if args.history:
        memory, history_ok = history.run(out_dir, args.resound_cmd, args.quick)
        parts.append(memory)
    table = "\n\n".join(parts)
    (out_dir / "results.json").write_text(json.dumps(document, indent=2, default=str))
    (out_dir / "table.md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {out_dir / 'results.json'}")
    failed = sum(1 for run in runs if report.failures(run))
    if failed:
        log.error("%d of %d runs failed (see FAILED above); their figures are not counted",
                  failed, len(runs))
    if not flood_ok:
        log.error("the webhook flood failed (see the table)")
    if not history_ok:
        log.error("the history memory run failed (see the table)")
    return 1 if failed or not flood_ok or not history_ok else 0
