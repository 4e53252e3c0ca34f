"""Start-up configuration from Reverb's environment names, an optional apps file, and the CLI.

Every check happens here, before the server binds, so a bad setting stops start-up with one
line naming it instead of failing later on a live socket.

The settings, with defaults, are listed in :mod:`broadcaster.settings_help` (shown by
``broadcaster start --help``).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from shared.flags import flag_error, is_on
from shared.redis_modes import parse_redis_url
from shared.redis_modes import redacted as redacted  # for the modules that log REDIS_URL

CLIENT_EVENT_SOURCES = ("members", "all", "none")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True, slots=True)
class MessageRateLimit:
    """Reverb's ``rate_limiting``: each socket may send ``max_attempts`` messages (of any kind)
    per window of ``decay_seconds``, counted from its first message in the window; the excess
    gets ``pusher:error`` 4301 and is dropped, and with ``terminate`` the socket is closed."""

    max_attempts: int = 60
    decay_seconds: float = 60.0
    terminate: bool = False


WEBHOOK_EVENTS = ("channel_occupied", "channel_vacated", "member_added", "member_removed",
                  "client_event", "cache_miss", "subscription_count")


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where one app's webhooks go (soketi's ``webhooks`` entry): the events of
    ``event_types`` on channels whose names start and end as the filter says."""

    url: str
    event_types: tuple[str, ...]
    starts_with: str = ""
    ends_with: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def wants(self, event_type: str, channel: str) -> bool:
        """Whether an ``event_type`` webhook on ``channel`` goes to this URL."""
        return (event_type in self.event_types and channel.startswith(self.starts_with)
                and channel.endswith(self.ends_with))


def _webhook(name: str, raw: object) -> Webhook:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a table with url and event_types, got {raw!r}")
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}.url must be an http:// or https:// URL, got {url!r}")
    types = raw.get("event_types")
    if not isinstance(types, list) or not types:
        raise ConfigError(f"{name}.event_types must be a non-empty list of "
                          f"{', '.join(WEBHOOK_EVENTS)}, got {types!r}")
    for event_type in types:
        if event_type not in WEBHOOK_EVENTS:
            raise ConfigError(f"{name}.event_types: unknown event type {event_type!r}; use "
                              f"{', '.join(WEBHOOK_EVENTS)}")
    found = raw.get("filter") or {}
    headers = raw.get("headers") or {}
    if not isinstance(found, Mapping) or not isinstance(headers, Mapping):
        raise ConfigError(f"{name}: filter and headers must be tables of strings")
    return Webhook(url, tuple(types), str(found.get("channel_name_starts_with") or ""),
                   str(found.get("channel_name_ends_with") or ""),
                   tuple((str(k), str(v)) for k, v in headers.items()))


T = TypeVar("T")


def _table_list(name: str, raw: object, what: str, shape: str,
                read: Callable[[str, object], T]) -> tuple[T, ...]:
    """A list of tables (``what``, shaped ``shape``), given as a list or as its JSON (from an
    environment variable); each read by ``read(its name, it)``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} is not a valid JSON list of {what}: {exc}") from None
    if not isinstance(raw, list):
        raise ConfigError(f"{name} must be a list of {what} {{{shape}}}")
    return tuple(read(f"{name}[{index}]", entry) for index, entry in enumerate(raw))


def _webhooks(name: str, raw: object) -> tuple[Webhook, ...]:
    return _table_list(name, raw, "webhooks", "url, event_types, ...", _webhook)


@dataclass(frozen=True, slots=True)
class HistoryRule:
    """Channels matching ``channels`` (a glob over the whole name) keep their last ``limit``
    events, none older than ``ttl`` seconds, so that clients can resume (issue 19)."""

    channels: str
    limit: int = 100
    ttl: int = 3600


MAX_HISTORY_LIMIT = 10_000  # events one channel may keep
MAX_HISTORY_TTL = 7 * 86_400  # seconds


def _history_rule(name: str, raw: object) -> HistoryRule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a table {{channels, limit, ttl}}")
    unknown = set(raw) - {"channels", "limit", "ttl"}
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {', '.join(sorted(unknown))}; use channels, "
                          "limit and ttl")
    channels = raw.get("channels")
    if not isinstance(channels, str) or not channels.strip():
        raise ConfigError(f"{name}.channels must be a glob over channel names, e.g. "
                          "'private-orders.*'")
    values = {"channels": channels.strip()}
    for option, top in (("limit", MAX_HISTORY_LIMIT), ("ttl", MAX_HISTORY_TTL)):
        if raw.get(option) is not None:
            value = _number(f"{name}.{option}", raw[option], int, 1)
            if value > top:
                raise ConfigError(f"{name}.{option} is {value}; at most {top}")
            values[option] = value
    return HistoryRule(**values)


def _history(name: str, raw: object) -> tuple[HistoryRule, ...]:
    return _table_list(name, raw, "history rules", "channels, limit, ttl", _history_rule)


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
    message_rate_limit: MessageRateLimit | None = None  # Reverb's rate_limiting, when enabled
    api_rate_limit: float | None = None  # HTTP API calls per second (429 past it), or no limit
    # User features Pusher documents (off by default, as on Pusher): see _user_features.
    watchlist_events: bool = False
    subscription_count: bool = False
    authorized_connections_timeout: float | None = None  # seconds, or None: not required
    webhooks: tuple[Webhook, ...] = ()  # soketi's per-app webhooks list
    webhook_batching: bool = False  # events of a short window go in one request
    history: tuple[HistoryRule, ...] = ()  # channels that keep their events for resuming


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
    idempotency_window: int = 300  # seconds a trigger's idempotency key is remembered
    tls_cert: str | None = None  # PEM certificate chain: wss and https on the port
    tls_key: str | None = None  # its PEM private key
    log_connections: bool = False  # closed connections logged at INFO rather than DEBUG
    drain_seconds: float = 0.0  # after SIGTERM: /ready says 503 this long, then shut down
    # Hardening against clients that never finish, never read or subscribe without end.
    http_head_timeout: float = 10.0  # seconds from a request's first byte to its last header
    http_body_timeout: float = 30.0  # seconds from a request's first byte to its last body byte
    max_http_connections: int = 1000  # connections not (yet) WebSockets; past it the oldest goes
    max_subscriptions: int = 1000  # channels one socket may be subscribed to at once
    write_buffer_total: int = 64_000_000  # bytes held for all slow sockets of this process
    tls_handshake_timeout: float = 5.0  # seconds from accept to the end of a TLS handshake
    metrics_port: int | None = None  # Prometheus /metrics on its own port; None: off
    metrics_host: str = "127.0.0.1"


def _number(name: str, raw: object, kind: type, minimum: float = 1,
            maximum: float = math.inf) -> Any:
    try:
        value = kind(raw)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def _port(name: str, raw: object) -> int:
    """A TCP port: 1 to 65535 (a larger number would wrap around to another port)."""
    return _number(name, raw, int, 1, 65_535)


def _flag(name: str, raw: object) -> bool:
    """A yes-or-no setting (true/false, 1/0, yes/no, on/off). Raises ConfigError."""
    problem = flag_error(raw, name)
    if problem:
        raise ConfigError(problem)
    return is_on(raw)


def _message_rate_limit(settings: Mapping[str, Any],
                        name: Callable[[str], str]) -> MessageRateLimit | None:
    """Reverb's ``rate_limiting`` table (``enabled``, ``max_attempts``, ``decay_seconds``,
    ``terminate_on_limit``), or None when it is not enabled."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{name('rate_limiting')} must be a table of rate limit settings")
    if not _flag(name("rate_limiting.enabled"), settings.get("enabled", False)):
        return None
    limit = MessageRateLimit()
    raw = settings.get("max_attempts")
    attempts = limit.max_attempts if raw in (None, "") else _number(
        name("rate_limiting.max_attempts"), raw, int)
    raw = settings.get("decay_seconds")
    decay = limit.decay_seconds if raw in (None, "") else _number(
        name("rate_limiting.decay_seconds"), raw, float, 0.001)
    terminate = _flag(name("rate_limiting.terminate_on_limit"),
                      settings.get("terminate_on_limit", False))
    return MessageRateLimit(attempts, decay, terminate)


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server's TLS context from PEM files, or None without them. Raises ConfigError."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("RESOUND_TLS_CERT and RESOUND_TLS_KEY go together: set both PEM files "
                          "(certificate chain and private key), or neither for plain ws/http")
    for name, path in (("RESOUND_TLS_CERT", cert), ("RESOUND_TLS_KEY", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{name} {path} is not a readable file; give the PEM file's path")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"RESOUND_TLS_CERT {cert} and RESOUND_TLS_KEY {key} are not a usable "
                          f"PEM certificate and matching key: {exc}") from None
    # No TLS 1.3 session tickets: with them, about 1 in 100 clients that sent their request
    # right after the handshake had it never read (a 408 after the head deadline), on asyncio's
    # TLS and uvloop's alike; without them, none in thousands (tests/clients/test_tls.py).
    context.num_tickets = 0
    return context


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
    if settings.get("rate_limiting") is not None:
        values["message_rate_limit"] = _message_rate_limit(settings["rate_limiting"], name)
    if settings.get("api_rate_limit") not in (None, ""):
        values["api_rate_limit"] = _number(
            name("api_rate_limit"), settings["api_rate_limit"], float, 1)
    values.update(_user_features(settings, name))
    if settings.get("webhooks") not in (None, ""):
        values["webhooks"] = _webhooks(name("webhooks"), settings["webhooks"])
    if settings.get("webhook_batching") not in (None, ""):
        values["webhook_batching"] = _flag(name("webhook_batching"), settings["webhook_batching"])
    if settings.get("history") not in (None, ""):
        values["history"] = _history(name("history"), settings["history"])
    return AppConfig(**values)


def _user_features(settings: Mapping[str, Any], name: Callable[[str], str]) -> dict[str, Any]:
    """Watchlist events, subscription counts and authorized connections, each opt-in."""
    values = {option: _flag(name(option), settings.get(option, False))
              for option in ("watchlist_events", "subscription_count")}
    if _flag(name("authorized_connections"), settings.get("authorized_connections", False)):
        raw = settings.get("authorized_connections_timeout")
        values["authorized_connections_timeout"] = 30.0 if raw in (None, "") else _number(
            name("authorized_connections_timeout"), raw, float, 0.1)
    return values


_ENV_NAMES = {
    "allowed_origins": "REVERB_ALLOWED_ORIGINS",
    "rate_limiting": "REVERB_APP_RATE_LIMITING_ENABLED",
    "rate_limiting.enabled": "REVERB_APP_RATE_LIMITING_ENABLED",
    "rate_limiting.max_attempts": "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS",
    "rate_limiting.decay_seconds": "REVERB_APP_RATE_LIMIT_DECAY_SECONDS",
    "rate_limiting.terminate_on_limit": "REVERB_APP_RATE_LIMIT_TERMINATE",
    "api_rate_limit": "RESOUND_APP_API_RATE_LIMIT",
    **{option: f"RESOUND_APP_{option.upper()}" for option in (
        "watchlist_events", "subscription_count", "authorized_connections",
        "authorized_connections_timeout")},
    "webhooks": "RESOUND_APP_WEBHOOKS",
    "webhook_batching": "RESOUND_APP_WEBHOOK_BATCHING",
    "history": "RESOUND_APP_HISTORY",
}


def _env_name(option: str) -> str:
    return _ENV_NAMES.get(option) or f"REVERB_APP_{option.upper()}"


_ENV_OPTIONS = ("id", "key", "secret", "ping_interval", "activity_timeout", "max_message_size",
                "max_connections", "max_presence_members", "accept_client_events_from",
                "allowed_origins", "api_rate_limit", "watchlist_events", "subscription_count",
                "authorized_connections", "authorized_connections_timeout", "webhooks",
                "webhook_batching", "history")
_ENV_RATE_LIMITING = ("enabled", "max_attempts", "decay_seconds", "terminate_on_limit")


def _env_app(env: Mapping[str, str], fallback: bool) -> AppConfig | None:
    """The app the REVERB_* variables describe; with ``fallback``, a dev app fills the gaps.

    The dev app has random credentials, so a bare start-up just works; the other REVERB_APP_*
    settings still apply to it.
    """
    settings: dict[str, Any] = {
        option: env[_env_name(option)] for option in _ENV_OPTIONS if _env_name(option) in env
    }
    rate_limiting = {option: env[_env_name(f"rate_limiting.{option}")]
                     for option in _ENV_RATE_LIMITING
                     if _env_name(f"rate_limiting.{option}") in env}
    if rate_limiting:
        settings["rate_limiting"] = rate_limiting
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
    if not _flag("REVERB_SCALING_ENABLED", env.get("REVERB_SCALING_ENABLED", "")):
        return None
    if env.get("REDIS_URL"):
        try:
            parse_redis_url(env["REDIS_URL"])
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from None
        return env["REDIS_URL"]
    host = env.get("REDIS_HOST") or "127.0.0.1"
    port = _port("REDIS_PORT", env.get("REDIS_PORT") or "6379")
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
    log_connections: bool = False,
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
    tls_cert = env.get("RESOUND_TLS_CERT") or None
    tls_key = env.get("RESOUND_TLS_KEY") or None
    tls_context(tls_cert, tls_key)  # a broken certificate or key stops start-up here
    size_name = "RESOUND_MAX_REQUEST_SIZE" if env.get("RESOUND_MAX_REQUEST_SIZE") else (
        "REVERB_MAX_REQUEST_SIZE" if env.get("REVERB_MAX_REQUEST_SIZE") else None)
    metrics_host, metrics_port = _metrics(env, metrics_port)
    return ServerConfig(
        host=host or env.get("REVERB_SERVER_HOST") or "0.0.0.0",
        port=_port("--port", port) if port is not None else _port(
            "REVERB_SERVER_PORT", env.get("REVERB_SERVER_PORT", "8080")),
        path=path,
        apps=apps,
        max_request_size=_number(size_name, env[size_name], int) if size_name else 1_000_000,
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
        idempotency_window=_number(
            "RESOUND_IDEMPOTENCY_WINDOW", env.get("RESOUND_IDEMPOTENCY_WINDOW", "300"), int
        ),
        tls_cert=tls_cert,
        tls_key=tls_key,
        log_connections=log_connections or _flag(
            "RESOUND_LOG_CONNECTIONS", env.get("RESOUND_LOG_CONNECTIONS", "")),
        drain_seconds=_number("RESOUND_DRAIN_SECONDS", env.get("RESOUND_DRAIN_SECONDS") or "0",
                              float, 0),
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        **_hardening(env),
    )


def _hardening(env: Mapping[str, str]) -> dict[str, Any]:
    """The limits on what one client may hold: deadlines, connection and subscription caps."""
    return {
        "http_head_timeout": _number("RESOUND_HTTP_HEAD_TIMEOUT",
                                     env.get("RESOUND_HTTP_HEAD_TIMEOUT", "10"), float, 0.1),
        "http_body_timeout": _number("RESOUND_HTTP_BODY_TIMEOUT",
                                     env.get("RESOUND_HTTP_BODY_TIMEOUT", "30"), float, 0.1),
        "max_http_connections": _number("RESOUND_MAX_HTTP_CONNECTIONS",
                                        env.get("RESOUND_MAX_HTTP_CONNECTIONS", "1000"), int),
        "max_subscriptions": _number("RESOUND_MAX_SUBSCRIPTIONS",
                                     env.get("RESOUND_MAX_SUBSCRIPTIONS", "1000"), int),
        "write_buffer_total": _number("RESOUND_WRITE_BUFFER_TOTAL",
                                      env.get("RESOUND_WRITE_BUFFER_TOTAL", "64000000"), int),
        "tls_handshake_timeout": _number("RESOUND_TLS_HANDSHAKE_TIMEOUT",
                                         env.get("RESOUND_TLS_HANDSHAKE_TIMEOUT", "5"), float,
                                         0.1),
    }


def _metrics(env: Mapping[str, str], port: int | None) -> tuple[str, int | None]:
    """The metrics endpoint's host and port (None: metrics off); ``port`` from the CLI wins."""
    name = "--metrics-port"
    if port is None and env.get("RESOUND_METRICS_PORT", "").strip():
        name, port = "RESOUND_METRICS_PORT", _number(
            "RESOUND_METRICS_PORT", env["RESOUND_METRICS_PORT"].strip(), int)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a port from 1 to 65535, got {port}")
    return env.get("RESOUND_METRICS_HOST", "").strip() or "127.0.0.1", port
