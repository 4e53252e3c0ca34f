"""``broadcaster start``: read the configuration, log the address, serve until signalled."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from ..cluster.base import Bus
from ..cluster.redis_bus import RedisBus, RedisUnavailable
from ..config import SETTINGS_HELP, ConfigError, ServerConfig, load_config
from .listener import Server

logger = logging.getLogger("broadcaster")

GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broadcaster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "start", help="serve WebSockets and the HTTP API on one port",
        epilog=SETTINGS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    start.add_argument("--host", help="address to bind (REVERB_SERVER_HOST, default 0.0.0.0)")
    start.add_argument("--port", type=int, help="port to bind (REVERB_SERVER_PORT, default 8080)")
    start.add_argument("--apps", help="JSON or TOML file of apps (REVERB_APPS_FILE)")
    start.add_argument("--debug", action="store_true", help="log every frame in and out")
    return parser


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("broadcaster").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("broadcaster.websockets").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def _announce(config: ServerConfig, port: int) -> None:
    logger.info("listening on http://%s:%d (WebSocket path %s/app/{key})",
                config.host, port, config.path)
    for app in config.apps:
        if config.dev_app:
            logger.info("development app: REVERB_APP_ID=%s REVERB_APP_KEY=%s "
                        "REVERB_APP_SECRET=%s", app.id, app.key, app.secret)
        else:
            logger.info("serving app %s (key %s)", app.id, app.key)


def _bus(config: ServerConfig) -> Bus | None:
    """The Redis bus when scaling is on; None means the server's local bus."""
    if config.scaling_url is None:
        return None
    return RedisBus(config.scaling_url, config.scaling_channel)


async def _serve(config: ServerConfig) -> None:
    server = Server(config, _bus(config))
    await server.start()
    # What start-up built (modules, config) lives forever: keep full collections off it.
    gc.freeze()
    # Each socket allocates a few dozen container objects that live as long as it does; with
    # the default 700 a connection burst runs a young collection every ~20 handshakes.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 10)
    _announce(config, server.port)
    await server.serve_until_signalled()


def _run(config: ServerConfig) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(config))
    else:
        uvloop.run(_serve(config))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.debug)
    try:
        config = load_config(host=args.host, port=args.port, apps_file=args.apps)
    except ConfigError as error:
        print(f"broadcaster: bad configuration: {error}", file=sys.stderr)
        return 2
    try:
        _run(config)
    except RedisUnavailable as error:
        print(f"broadcaster: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"broadcaster: cannot listen on {config.host}:{config.port}: {error.strerror}",
              file=sys.stderr)
        return 1
    return 0
