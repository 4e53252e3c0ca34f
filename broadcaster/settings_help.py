"""Every setting the broadcaster reads, by topic, with its default: ``broadcaster start --help``
prints :data:`SETTINGS_HELP`, and README.md's settings table lists the same names (a test
compares them, and compares both with what :func:`~broadcaster.config.load_config` reads).
"""

from __future__ import annotations

# (topic, ((setting, default, what it does), ...)); a setting with a flag names both.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("Server", (
        ("REVERB_SERVER_HOST, --host", "0.0.0.0", "address to bind"),
        ("REVERB_SERVER_PORT, --port", "8080", "port of the WebSockets and the HTTP API"),
        ("REVERB_SERVER_PATH", "none", "prefix of /app/... and /apps/..."),
        ("RESOUND_WORKERS, --workers", "1", "processes on the port; more than 1 needs scaling"),
        ("RESOUND_TLS_CERT", "off", "PEM certificate chain: wss and https on the port"),
        ("RESOUND_TLS_KEY", "off", "its PEM private key"),
        ("RESOUND_DRAIN_SECONDS", "0 s", "after SIGTERM, /ready answers 503 this long first"),
        ("RESOUND_LOG_CONNECTIONS, --log-connections", "false",
         "a line per closed connection at INFO, not DEBUG"),
    )),
    ("The app (none set: a random development app, logged)", (
        ("REVERB_APP_ID", "random", "the app's id"),
        ("REVERB_APP_KEY", "random", "the key clients connect with"),
        ("REVERB_APP_SECRET", "random", "the secret signatures are made with"),
        ("REVERB_APP_PING_INTERVAL", "60 s", "silence before the server pings"),
        ("REVERB_APP_ACTIVITY_TIMEOUT", "30 s", "told to clients in connection_established"),
        ("REVERB_APP_MAX_MESSAGE_SIZE", "10000 bytes", "largest message a client may send"),
        ("REVERB_APP_MAX_CONNECTIONS", "unlimited", "sockets of the app; past it 4004"),
        ("REVERB_APP_MAX_PRESENCE_MEMBERS", "100", "members per presence channel"),
        ("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "members", "members, all or none"),
        ("REVERB_ALLOWED_ORIGINS", "*", "comma-separated hosts, e.g. *.example.com"),
        ("REVERB_APP_RATE_LIMITING_ENABLED", "false", "limit the messages a socket sends"),
        ("REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS", "60", "messages per window; the excess gets 4301"),
        ("REVERB_APP_RATE_LIMIT_DECAY_SECONDS", "60 s", "the window"),
        ("REVERB_APP_RATE_LIMIT_TERMINATE", "false", "also close the socket with 4301"),
        ("RESOUND_APP_API_RATE_LIMIT", "off", "HTTP API calls per second; past it 429"),
        ("RESOUND_APP_WATCHLIST_EVENTS", "false", "watchlist online/offline events"),
        ("RESOUND_APP_SUBSCRIPTION_COUNT", "false", "pusher_internal:subscription_count"),
        ("RESOUND_APP_AUTHORIZED_CONNECTIONS", "false", "close sockets that stay anonymous"),
        ("RESOUND_APP_AUTHORIZED_CONNECTIONS_TIMEOUT", "30 s", "that time"),
        ("RESOUND_APP_WEBHOOKS", "none", 'JSON list [{"url", "event_types", ...}]'),
        ("RESOUND_APP_WEBHOOK_BATCHING", "false", "a short window's events in one request"),
        ("RESOUND_APP_HISTORY", "none", 'JSON list [{"channels", "limit", "ttl"}]'),
    )),
    ("More apps", (
        ("REVERB_APPS_FILE, --apps", "none",
         'JSON or TOML: {"apps": [{"id", "key", "secret", ...}]}'),
    )),
    ("Scaling (several processes or machines as one server)", (
        ("REVERB_SCALING_ENABLED", "false", "share events and state through Redis"),
        ("REDIS_URL", "none", "redis://, unix://, redis+cluster://, redis+sentinel://..."),
        ("REDIS_HOST", "127.0.0.1", "without REDIS_URL, with the four below"),
        ("REDIS_PORT", "6379", ""),
        ("REDIS_USERNAME", "none", ""),
        ("REDIS_PASSWORD", "none", ""),
        ("REDIS_DB", "0", ""),
        ("REVERB_SCALING_CHANNEL", "reverb", "prefix of the Redis pub/sub channels"),
    )),
    ("Limits", (
        ("RESOUND_MAX_REQUEST_SIZE", "1000000 bytes", "HTTP body limit; past it 413"),
        ("REVERB_MAX_REQUEST_SIZE", "none", "read when RESOUND_MAX_REQUEST_SIZE is not set"),
        ("RESOUND_WRITE_BUFFER_LIMIT", "4000000 bytes", "queued for one socket; past it 4100"),
        ("RESOUND_WRITE_BUFFER_TOTAL", "64000000 bytes", "queued for all slow sockets together"),
        ("RESOUND_HTTP_HEAD_TIMEOUT", "10 s", "to send a request's line and headers; late: 408"),
        ("RESOUND_HTTP_BODY_TIMEOUT", "30 s", "to send a whole request; late: 408"),
        ("RESOUND_HTTP_IDLE_TIMEOUT", "60 s", "an idle HTTP connection is closed after it"),
        ("RESOUND_MAX_HTTP_CONNECTIONS", "1000", "connections not yet WebSockets"),
        ("RESOUND_MAX_SUBSCRIPTIONS", "1000", "channels per socket; past it 4302"),
        ("RESOUND_TLS_HANDSHAKE_TIMEOUT", "5 s", "from accept to the end of a TLS handshake"),
        ("RESOUND_IDEMPOTENCY_WINDOW", "300 s", "how long a trigger's idempotency key counts"),
    )),
    ("Metrics", (
        ("RESOUND_METRICS_PORT, --metrics-port", "off", "Prometheus /metrics on this port"),
        ("RESOUND_METRICS_HOST", "127.0.0.1", "address the metrics port binds"),
    )),
)

FOOTER = ("Yes-or-no settings take true/false, 1/0, yes/no or on/off. A bad value stops "
          "start-up\nwith one line naming it. README.md has the details.")


def _render() -> str:
    rows = [row for _, settings in SECTIONS for row in settings]
    name_width = max(len(name) for name, _, _ in rows)
    default_width = max(len(default) for _, default, _ in rows)
    lines = ["settings (environment variables; a flag wins over its variable):"]
    for topic, settings in SECTIONS:
        lines += ["", f"{topic}:"]
        lines += [f"  {name:<{name_width}}  {default:<{default_width}}  {what}".rstrip()
                  for name, default, what in settings]
    return "\n".join([*lines, "", FOOTER, ""])


SETTINGS_HELP = _render()
