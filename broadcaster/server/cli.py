"""``broadcaster start``: read the configuration, log the address, serve until signalled."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import socket
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from ..cluster.redis_bus import RedisUnavailable
from ..config import ConfigError, ServerConfig, load_config
from ..metrics.snapshot import reader
from ..settings_help import SETTINGS_HELP
from .factory import MetricsUnavailable, build_server, serve_metrics
from .listener import Server
from .supervisor import Link, supervise

logger = logging.getLogger("broadcaster")

GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="broadcaster", description="Resound's Pusher-protocol server (a drop-in for Laravel "
        "Reverb). 'broadcaster start --help' lists its settings.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "start", help="serve WebSockets and the HTTP API on one port",
        epilog=SETTINGS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    start.add_argument("--host", help="address to bind (REVERB_SERVER_HOST, default 0.0.0.0)")
    start.add_argument("--port", type=int, help="port to bind (REVERB_SERVER_PORT, default 8080)")
    start.add_argument("--apps", help="JSON or TOML file of apps (REVERB_APPS_FILE)")
    start.add_argument("--workers", type=int,
                       help="processes serving the port (RESOUND_WORKERS, default 1)")
    start.add_argument("--metrics-port", type=int,
                       help="serve Prometheus /metrics on this port (RESOUND_METRICS_PORT, off)")
    start.add_argument("--debug", action="store_true", help="log every frame in and out")
    start.add_argument("--log-connections", action="store_true",
                       help="log each closed connection at INFO (RESOUND_LOG_CONNECTIONS)")
    return parser


def _version() -> str:
    try:
        return version("resound")
    except PackageNotFoundError:
        return "(not installed: run pip install -e .)"


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("broadcaster").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("broadcaster.websockets").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def _announce(config: ServerConfig, port: int) -> None:
    workers = f", {config.workers} workers" if config.workers > 1 else ""
    scheme = "https" if config.tls_cert else "http"
    logger.info("listening on %s://%s:%d (WebSocket path %s/app/{key}%s)",
                scheme, config.host, port, config.path, workers)
    for app in config.apps:
        if config.dev_app:
            logger.warning("development app: REVERB_APP_ID=%s REVERB_APP_KEY=%s "
                           "REVERB_APP_SECRET=%s (random, for this run only: set REVERB_APP_ID, "
                           "REVERB_APP_KEY and REVERB_APP_SECRET, or REVERB_APPS_FILE, to serve "
                           "your own app)", app.id, app.key, app.secret)
        else:
            logger.info("serving app %s (key %s)", app.id, app.key)


async def _serve(config: ServerConfig, sock: socket.socket | None,
                 started: Callable[[Server], None]) -> None:
    server = build_server(config)
    if config.workers == 1:  # with workers, the supervisor serves their sum
        serve_metrics(config, reader(server))  # first: a taken port stops start-up at once
    await server.start(sock)
    # What start-up built (modules, config) lives forever: keep full collections off it.
    gc.freeze()
    # Each socket allocates a few dozen container objects that live as long as it does; with
    # the default 700 a connection burst runs a young collection every ~20 handshakes.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 10)
    started(server)
    await server.serve_until_signalled()


def _run(config: ServerConfig, sock: socket.socket | None = None,
         started: Callable[[Server], None] | None = None) -> int:
    """Serve in this process until signalled (``sock``: bound by the supervisor); exit status."""
    serving = _serve(config, sock, started or (lambda server: _announce(config, server.port)))
    try:
        import uvloop
    except ImportError:
        asyncio.run(serving)
    else:
        uvloop.run(serving)
    return 0


def _reporting_errors(config: ServerConfig, serve: Callable[[], int]) -> int:
    """``serve()``'s exit status; 1, with a line on stderr, if Redis, the port or the TLS
    files are unusable."""
    try:
        return serve()
    except ConfigError as error:
        print(f"broadcaster: bad configuration: {error}", file=sys.stderr)
        return 2
    except (RedisUnavailable, MetricsUnavailable) as error:
        print(f"broadcaster: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"broadcaster: cannot listen on {config.host}:{config.port}: {error.strerror}",
              file=sys.stderr)
        return 1


def _worker(debug: bool, link: Link) -> int:
    """A worker process under ``--workers``: serve the supervisor's socket until SIGTERM."""
    _configure_logging(debug)
    return _reporting_errors(link.config, lambda: _run(link.config, link.sock, link.started))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.debug)
    try:
        config = load_config(host=args.host, port=args.port, apps_file=args.apps,
                             workers=args.workers, log_connections=args.log_connections,
                             metrics_port=args.metrics_port)
    except ConfigError as error:
        print(f"broadcaster: bad configuration: {error}", file=sys.stderr)
        return 2
    if config.workers == 1:
        return _reporting_errors(config, lambda: _run(config))
    return _reporting_errors(config, lambda: supervise(
        config, _worker, (args.debug,), lambda port: _announce(config, port)))
