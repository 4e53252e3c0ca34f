"""Configuration from the environment, as a Laravel app reads its .env.

Every key below can be set as an environment variable of the same name; ``create_app(config)``
overrides both. The defaults suit a local run (SQLite in the instance folder, broadcaster on
127.0.0.1:8080).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.flags import SPELLINGS, flag_error, is_on

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_BATCH = 10  # events per POST batch_events: the Pusher limit, which the broadcaster applies

# A key anyone can read is no key: these are (or were) in the repository, and the first was the
# development default until a red team forged admin tokens with it. Refused whatever the mode.
PUBLIC_SECRET_KEYS = frozenset({"dev-secret-key-change-me"})
MIN_SECRET_KEY_BYTES = 32
MAKE_SECRET_KEY = ("SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "
                   "(scripts/run.sh writes one into .env)")
MISSING_SECRET_KEY = (f"SECRET_KEY is not set: put a random one in the environment or .env, e.g. "
                      f"{MAKE_SECRET_KEY}, or run with --debug for development")
# Debugging or testing without a SECRET_KEY: a random key made once, in the instance folder.
DEV_SECRET_KEY_FILE = "dev-secret-key"

SQLITE_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")  # the durable levels in WAL mode

DEFAULTS: dict[str, Any] = {
    # Signs sessions and API tokens: at least 32 random bytes, never a public one (see
    # secret_key); required outside debugging and tests.
    "SECRET_KEY": None,
    # Failed sign-ins allowed per account from one client address, and per client address
    # (Flask-Limiter syntax); the counters are in Redis when REDIS_URL is set, in each web
    # process's memory otherwise.
    "LOGIN_LIMIT_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_LIMIT_PER_ADDRESS": "50 per 15 minutes",
    "REDIS_URL": None,
    # Seconds a pending (unpaid) order holds its stock: then the worker cancels it and releases
    # the stock. And how many pending orders one customer may have at once (the next is 422).
    "PENDING_ORDER_TTL": 30 * 60.0,
    "PENDING_ORDERS_PER_CUSTOMER": 5,
    # Seconds between the worker's checks of the live presence table against the broadcaster
    # (GET channels); a row unconfirmed for longer than this is expired (activity.py).
    "LIVE_PRESENCE_CHECK_SECONDS": 60.0,
    "DATABASE_URL": None,  # None: SQLite file in the instance folder
    # SQLite only (in WAL mode): NORMAL syncs the log to disk at checkpoints, not at every
    # commit; a commit survives a crash of the app, but the last ones may be rolled back by a
    # power cut or an OS crash. FULL syncs at every commit (about 9 ms on our VM's disk, which
    # caps the writes at about 110 a second). EXTRA also syncs the directory.
    "SQLITE_SYNCHRONOUS": "NORMAL",
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
    # Seconds an outbox row is kept once sent (delivered, or refused for good); then the worker
    # deletes it. Pending rows are never deleted.
    "OUTBOX_KEEP_SECONDS": 7 * 24 * 3600.0,
    # Try delivery from the web process right after commit (the worker is the guarantee, and
    # is woken by the same commits: broadcasting/wakeup.py). Off, the worker delivers alone: on
    # a loaded 2-core machine that halved the rate on PostgreSQL (one serial deliverer).
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


def secret_key_error(key: str | bytes) -> str | None:
    """Why ``key`` cannot sign sessions and API tokens (public, or too short), or None."""
    raw = key.encode() if isinstance(key, str) else key
    if raw.strip().decode(errors="replace") in PUBLIC_SECRET_KEYS:
        return (f"SECRET_KEY is a public key (it is in the repository): anyone could forge "
                f"sessions and API tokens with it; make your own: {MAKE_SECRET_KEY}")
    size = len(raw)
    if size < MIN_SECRET_KEY_BYTES:
        return (f"SECRET_KEY is {size} bytes long; use at least {MIN_SECRET_KEY_BYTES} random "
                f"bytes: {MAKE_SECRET_KEY}")
    return None


def secret_key(values: Mapping[str, Any], development: bool,
               instance_path: str) -> str | bytes:
    """The configured SECRET_KEY, which must pass :func:`secret_key_error` in every mode.
    Without one, ``development`` (debug or testing) gets :func:`development_secret_key`;
    anything else gets :class:`ConfigError`."""
    key = values.get("SECRET_KEY")
    if key:
        problem = secret_key_error(key)
        if problem:
            raise ConfigError(problem)
        return key
    if not development:
        raise ConfigError(MISSING_SECRET_KEY)
    return development_secret_key(Path(instance_path) / DEV_SECRET_KEY_FILE)


def development_secret_key(path: Path) -> str:
    """The random key stored at ``path``, made there (readable by its owner only) on first use.

    Stored, not made per process: the reloader of ``flask run --debug`` and every worker of a
    debug gunicorn then share one key, so sessions survive a reload. Two processes starting at
    once agree: the first to link its file in place wins, the other reads it.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(MIN_SECRET_KEY_BYTES))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    problem = secret_key_error(key)
    if problem:
        raise ConfigError(f"{path}: {problem}; or delete the file to get a new random one")
    return key


def _convert(default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        if flag_error(raw, "it"):
            raise ValueError(raw)
        return is_on(raw)
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
                kind = f"true or false ({SPELLINGS})" if isinstance(default, bool) else \
                    f"a valid {type(default).__name__}"
                raise ValueError(f"environment variable {key}={environ[key]!r} is not "
                                 f"{kind}") from None
    values.update(overrides or {})
    check_outbox(values)
    if isinstance(values["SQLITE_SYNCHRONOUS"], str):
        values["SQLITE_SYNCHRONOUS"] = values["SQLITE_SYNCHRONOUS"].strip().upper()
    if values["SQLITE_SYNCHRONOUS"] not in SQLITE_SYNCHRONOUS:
        raise ConfigError(f"SQLITE_SYNCHRONOUS={values['SQLITE_SYNCHRONOUS']!r}: set one of "
                          f"{', '.join(SQLITE_SYNCHRONOUS)}")
    check_positive(values, ("PENDING_ORDER_TTL", "PENDING_ORDERS_PER_CUSTOMER",
                            "LIVE_PRESENCE_CHECK_SECONDS", "OUTBOX_KEEP_SECONDS"))
    return values


def check_positive(values: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """:class:`ConfigError` for any of ``keys`` that is not a number above 0 (of its default's
    type: a whole number where the default is one)."""
    for key in keys:
        value, kind = values[key], type(DEFAULTS[key])
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or not value > 0:
            whole = "a whole number" if kind is int else "a number"
            raise ConfigError(f"{key}={value!r}: set {whole} above 0 (default "
                              f"{DEFAULTS[key]!r})")


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
