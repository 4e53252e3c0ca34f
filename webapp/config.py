"""Configuration from the environment, as a Laravel app reads its .env.

Every key below can be set as an environment variable of the same name; ``create_app(config)``
overrides both. The defaults suit a local run (SQLite in the instance folder, broadcaster on
127.0.0.1:8080).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .reverb_client import MAX_BATCH

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Signs sessions and API tokens when debugging or testing without a SECRET_KEY. It is public:
# anywhere else the app refuses to start without a key of its own.
DEV_SECRET_KEY = "dev-secret-key-change-me"
MISSING_SECRET_KEY = (
    "SECRET_KEY is not set: put SECRET_KEY=<random> in the environment or .env, e.g. "
    "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "
    "(scripts/run.sh writes one), or run with --debug for development"
)

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,  # required outside debugging and tests: see MISSING_SECRET_KEY
    # Failed sign-ins allowed per account and per client address (Flask-Limiter syntax); the
    # counters are in Redis when REDIS_URL is set, in each web process's memory otherwise.
    "LOGIN_LIMIT_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_LIMIT_PER_ADDRESS": "50 per 15 minutes",
    "REDIS_URL": None,
    "DATABASE_URL": None,  # None: SQLite file in the instance folder
    "REVERB_APP_ID": "app-id",
    "REVERB_APP_KEY": "app-key",
    "REVERB_APP_SECRET": "app-secret",
    "REVERB_HOST": "127.0.0.1",
    "REVERB_PORT": 8080,
    "REVERB_SCHEME": "http",
    # Seconds an API token stays valid.
    "API_TOKEN_MAX_AGE": 12 * 3600,
    # Outbox delivery: HTTP timeout (a deliverer holds the batch it sends for this plus 1 s, see
    # delivery.lease_seconds), worker sleeps.
    "OUTBOX_HTTP_TIMEOUT": 5.0,
    "OUTBOX_IDLE_SECONDS": 0.5,
    "OUTBOX_BACKOFF_INITIAL": 0.5,
    "OUTBOX_BACKOFF_MAX": 30.0,
    # Events per request to the broadcaster (1..10; more than 1 uses POST batch_events), and
    # whether a deliverer keeps its HTTP connection open between requests.
    "OUTBOX_BATCH_SIZE": 10,
    "OUTBOX_KEEP_ALIVE": True,
    # Try delivery from the web process right after commit (the worker is the guarantee).
    "OUTBOX_DELIVER_ON_COMMIT": True,
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # larger request bodies get 413
    "SESSION_COOKIE_SAMESITE": "Lax",
    "NODE_MODULES": str(PROJECT_ROOT / "node_modules"),
    # @resound/resume's ES modules, in its npm package folder (served at /vendor/resume/).
    "RESUME_MODULE": str(PROJECT_ROOT / "clients" / "js" / "src"),
    "WEB_PORT": 5000,  # the Procfile's web port, for the URL the seed prints
}


class ConfigError(RuntimeError):
    """A setting the app cannot run with; the message says what to set."""


def secret_key(values: Mapping[str, Any], development: bool) -> str:
    """The configured SECRET_KEY; the public development key only when ``development``
    (debug or testing); :class:`ConfigError` otherwise."""
    if values.get("SECRET_KEY"):
        return values["SECRET_KEY"]
    if not development:
        raise ConfigError(MISSING_SECRET_KEY)
    return DEV_SECRET_KEY


def _convert(default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load(environ: Mapping[str, str], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults, then environment variables, then explicit overrides."""
    values = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        if key in environ:
            try:
                values[key] = _convert(default, environ[key])
            except ValueError:
                raise ValueError(f"environment variable {key}={environ[key]!r} is not a valid "
                                 f"{type(default).__name__}") from None
    values.update(overrides or {})
    check_outbox(values)
    return values


def check_outbox(values: Mapping[str, Any]) -> None:
    """:class:`ConfigError` for outbox settings delivery cannot work with."""
    size = values["OUTBOX_BATCH_SIZE"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
        raise ConfigError(f"OUTBOX_BATCH_SIZE={size!r}: set a whole number from 1 (one event "
                          f"per request) to {MAX_BATCH} (the broadcaster's batch limit)")


# PostgreSQL URLs as hosts write them (postgres://, postgresql://) are driven by psycopg 3.
POSTGRES_SCHEMES = ("postgres://", "postgresql://")
PSYCOPG_SCHEME = "postgresql+psycopg://"


def database_uri(values: Mapping[str, Any], instance_path: str) -> str:
    """``DATABASE_URL`` for SQLAlchemy (a plain PostgreSQL URL gets the psycopg 3 driver), or
    SQLite in the instance folder when it is not set."""
    url = values.get("DATABASE_URL")
    if url:
        for scheme in POSTGRES_SCHEMES:
            if url.startswith(scheme):
                return PSYCOPG_SCHEME + url[len(scheme):]
        return url
    os.makedirs(instance_path, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / 'resound.sqlite3'}"
