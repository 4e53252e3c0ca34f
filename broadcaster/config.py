"""Start-up configuration from Reverb's environment names, an optional apps file, and the CLI.

Every check happens here, before the server binds, so a bad setting stops start-up with one
line naming it instead of failing later on a live socket.

The settings, with defaults, are in :data:`SETTINGS_HELP` (shown by ``start --help``).
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

SETTINGS_HELP = """\
Server: REVERB_SERVER_HOST (0.0.0.0), REVERB_SERVER_PORT (8080), REVERB_SERVER_PATH ("").
App: REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET (none: a random dev app, printed),
REVERB_APP_PING_INTERVAL (60 s), REVERB_APP_ACTIVITY_TIMEOUT (30 s),
REVERB_APP_MAX_MESSAGE_SIZE (10000 bytes), REVERB_APP_MAX_CONNECTIONS (unlimited),
REVERB_APP_MAX_PRESENCE_MEMBERS (100 users per presence channel),
REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM (members | all | none), REVERB_ALLOWED_ORIGINS (*).
More apps: REVERB_APPS_FILE or --apps, JSON or TOML {"apps": [{"id", "key", "secret",
"ping_interval", ..., "max_presence_members", "allowed_origins": [...]}]}.
Scaling: REVERB_SCALING_ENABLED with REDIS_URL or REDIS_HOST/PORT/USERNAME/PASSWORD/DB,
REVERB_SCALING_CHANNEL (reverb).
Workers: RESOUND_WORKERS or --workers (1) processes on the one port; more than 1 needs scaling.
Limits: RESOUND_MAX_REQUEST_SIZE (1000000 bytes of HTTP body),
RESOUND_WRITE_BUFFER_LIMIT (4000000 bytes queued for one socket before it is closed with 4100),
RESOUND_HTTP_IDLE_TIMEOUT (60 s an HTTP or unfinished connection may sit idle).
Metrics: RESOUND_METRICS_PORT or --metrics-port (off) serves Prometheus /metrics there,
on RESOUND_METRICS_HOST (127.0.0.1); with workers, the parent serves every worker's sum.
"""

CLIENT_EVENT_SOURCES = ("members", "all", "none")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True, slots=True)
class AppConfig:
    """One Pusher app: credentials and the per-app limits Reverb knows."""

    id: str
    key: str
    secret: str
    ping_interval: float = 60.0
    activity_timeout: int = 30
    max_message_size: int = 10_000
    max_connections: int | None = None
    accept_client_events_from: str = "members"
    allowed_origins: tuple[str, ...] = ("*",)
    max_presence_members: int = 100
    max_user_info_size: int = 1_000
    client_events_per_second: int = 10


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The listener and the apps it serves."""

    host: str = "0.0.0.0"
    port: int = 8080
    path: str = ""
    apps: tuple[AppConfig, ...] = ()
    max_request_size: int = 1_000_000
    write_buffer_limit: int = 4_000_000
    http_idle_timeout: float = 60.0  # seconds before an idle non-WebSocket connection is closed
    dev_app: bool = False
    scaling_url: str | None = None  # Redis URL when REVERB_SCALING_ENABLED, else one process
    scaling_channel: str = "reverb"
    workers: int = 1  # processes serving the port (--workers); more than 1 needs scaling_url
    node_id: str | None = None  # this process's cluster node id (a worker's is set by its parent)
    metrics_port: int | None = None  # Prometheus /metrics on its own port; None: off
    metrics_host: str = "127.0.0.1"


def _number(name: str, raw: object, kind: type, minimum: float = 1) -> Any:
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _origins(name: str, raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        items = [item.strip() for item in raw]
    else:
        raise ConfigError(f"{name} must be a list of origins such as '*.example.com', got {raw!r}")
    origins = tuple(item for item in items if item)
    if not origins:
        raise ConfigError(f"{name} is empty; use '*' to allow every origin")
    return origins


def _app(settings: Mapping[str, Any], name: Callable[[str], str]) -> AppConfig:
    """Build an app from ``settings`` keyed by Reverb's app option names.

    ``name(option)`` is how the option is spelled where it came from, for error messages.
    """
    values: dict[str, Any] = {}
    for option in ("id", "key", "secret"):
        raw = settings.get(option)
        if raw is None or str(raw).strip() == "":
            raise ConfigError(f"{name(option)} is missing; every app needs an id, key and secret")
        values[option] = str(raw).strip()
    if "ping_interval" in settings:
        values["ping_interval"] = _number(
            name("ping_interval"), settings["ping_interval"], float, 0.05
        )
    for option in ("activity_timeout", "max_message_size", "max_connections",
                   "max_presence_members"):
        if settings.get(option) not in (None, ""):
            values[option] = _number(name(option), settings[option], int)
    source = settings.get("accept_client_events_from")
    if source not in (None, ""):
        if source not in CLIENT_EVENT_SOURCES:
            raise ConfigError(
                f"{name('accept_client_events_from')} must be one of "
                f"{', '.join(CLIENT_EVENT_SOURCES)}, got {source!r}"
            )
        values["accept_client_events_from"] = source
    if settings.get("allowed_origins") is not None:
        values["allowed_origins"] = _origins(name("allowed_origins"), settings["allowed_origins"])
    return AppConfig(**values)


def _env_name(option: str) -> str:
    if option == "allowed_origins":
        return "REVERB_ALLOWED_ORIGINS"
    return f"REVERB_APP_{option.upper()}"


_ENV_OPTIONS = ("id", "key", "secret", "ping_interval", "activity_timeout", "max_message_size",
                "max_connections", "max_presence_members", "accept_client_events_from",
                "allowed_origins")


def _env_app(env: Mapping[str, str], fallback: bool) -> AppConfig | None:
    """The app the REVERB_* variables describe; with ``fallback``, a dev app fills the gaps.

    The dev app has random credentials, so a bare start-up just works; the other REVERB_APP_*
    settings still apply to it.
    """
    settings: dict[str, Any] = {
        option: env[_env_name(option)] for option in _ENV_OPTIONS if _env_name(option) in env
    }
    if not any(settings.get(option) for option in ("id", "key", "secret")):
        if not fallback:
            return None
        settings.update({
            "id": str(secrets.randbelow(900_000) + 100_000),
            "key": secrets.token_hex(10),
            "secret": secrets.token_hex(20),
        })
    return _app(settings, _env_name)


def load_apps_file(path: str) -> tuple[AppConfig, ...]:
    """Apps from a JSON or TOML file: ``{"apps": [{"id", "key", "secret", ...}, ...]}``."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"apps file {path} cannot be read: {exc.strerror}") from None
    try:
        document = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = file.suffix[1:].upper() or "JSON"
        raise ConfigError(f"apps file {path} is not valid {kind}: {exc}") from None
    entries = document.get("apps") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"apps file {path} must hold a non-empty list 'apps' of app tables")
    apps = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"apps file {path}: apps[{index}] must be a table of settings")
        apps.append(_app(entry, lambda option, i=index: f"{path}: apps[{i}].{option}"))
    return tuple(apps)


def _check_unique(apps: tuple[AppConfig, ...]) -> None:
    for attribute in ("id", "key"):
        values = [getattr(app, attribute) for app in apps]
        duplicates = {value for value in values if values.count(value) > 1}
        if duplicates:
            raise ConfigError(f"app {attribute} {sorted(duplicates)[0]!r} is used by two apps")


def _scaling_url(env: Mapping[str, str]) -> str | None:
    """The Redis URL to scale through (Reverb's REVERB_SCALING_ENABLED), or None."""
    enabled = env.get("REVERB_SCALING_ENABLED", "false").strip().lower()
    if enabled not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ConfigError(f"REVERB_SCALING_ENABLED must be true or false, got {enabled!r}")
    if enabled not in ("true", "1", "yes"):
        return None
    if env.get("REDIS_URL"):
        if not env["REDIS_URL"].startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
        return env["REDIS_URL"]
    host = env.get("REDIS_HOST") or "127.0.0.1"
    port = _number("REDIS_PORT", env.get("REDIS_PORT") or "6379", int)
    database = _number("REDIS_DB", env.get("REDIS_DB") or "0", int, 0)
    user, password = env.get("REDIS_USERNAME", ""), env.get("REDIS_PASSWORD", "")
    credentials = f"{quote(user)}:{quote(password)}@" if user or password else ""
    return f"redis://{credentials}{host}:{port}/{database}"


def load_config(
    env: Mapping[str, str] | None = None,
    host: str | None = None,
    port: int | None = None,
    apps_file: str | None = None,
    workers: int | None = None,
    metrics_port: int | None = None,
) -> ServerConfig:
    """The server configuration; CLI values override the environment. Raises ConfigError."""
    env = os.environ if env is None else env
    apps_file = apps_file or env.get("REVERB_APPS_FILE") or None
    apps: tuple[AppConfig, ...] = load_apps_file(apps_file) if apps_file else ()
    dev_app = not apps and not any(env.get(_env_name(o)) for o in ("id", "key", "secret"))
    env_app = _env_app(env, fallback=dev_app)
    if env_app is not None:
        apps = (env_app, *apps)
    _check_unique(apps)
    path = env.get("REVERB_SERVER_PATH", "").strip().rstrip("/")
    if path and not path.startswith("/"):
        raise ConfigError(f"REVERB_SERVER_PATH must start with '/', got {path!r}")
    if workers is None:
        workers = _number("RESOUND_WORKERS", env.get("RESOUND_WORKERS", "1"), int)
    elif workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    scaling_url = _scaling_url(env)
    if workers > 1 and scaling_url is None:
        raise ConfigError(f"{workers} workers need REVERB_SCALING_ENABLED=true and REDIS_URL "
                          "(workers share state through Redis); or run 1 worker")
    metrics_host, metrics_port = _metrics(env, metrics_port)
    return ServerConfig(
        host=host or env.get("REVERB_SERVER_HOST") or "0.0.0.0",
        port=port if port is not None else _number(
            "REVERB_SERVER_PORT", env.get("REVERB_SERVER_PORT", "8080"), int, 0
        ),
        path=path,
        apps=apps,
        max_request_size=_number(
            "RESOUND_MAX_REQUEST_SIZE", env.get("RESOUND_MAX_REQUEST_SIZE", "1000000"), int
        ),
        write_buffer_limit=_number(
            "RESOUND_WRITE_BUFFER_LIMIT", env.get("RESOUND_WRITE_BUFFER_LIMIT", "4000000"), int
        ),
        http_idle_timeout=_number(
            "RESOUND_HTTP_IDLE_TIMEOUT", env.get("RESOUND_HTTP_IDLE_TIMEOUT", "60"), float, 0.1
        ),
        dev_app=dev_app,
        scaling_url=scaling_url,
        scaling_channel=env.get("REVERB_SCALING_CHANNEL") or "reverb",
        workers=workers,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )


def _metrics(env: Mapping[str, str], port: int | None) -> tuple[str, int | None]:
    """The metrics endpoint's host and port (None: metrics off); ``port`` from the CLI wins."""
    name = "--metrics-port"
    if port is None and env.get("RESOUND_METRICS_PORT", "").strip():
        name, port = "RESOUND_METRICS_PORT", _number(
            "RESOUND_METRICS_PORT", env["RESOUND_METRICS_PORT"].strip(), int)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a port from 1 to 65535, got {port}")
    return env.get("RESOUND_METRICS_HOST", "").strip() or "127.0.0.1", port


def redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
