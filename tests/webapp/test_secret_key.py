"""SECRET_KEY signs sessions and API tokens, so the app refuses to start with one anyone can know:
none at all (outside debugging and tests), a public one (the old development default, or any
value written in the repository) or one shorter than 32 bytes, in every mode. Debugging without
a key uses a random one stored in ``instance/``. The red team's attack, an admin token and
session cookie signed with the public development key, gets 401 and the sign-in page."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from tests.clients.driver import ROOT
from tests.clients.webapp_api import ADMIN
from webapp import create_app
from webapp.config import (
    DEV_SECRET_KEY_FILE,
    MIN_SECRET_KEY_BYTES,
    PUBLIC_SECRET_KEYS,
    ConfigError,
)
from webapp.extensions import db
from webapp.orders.models import User

PUBLIC_DEVELOPMENT_KEY = "dev-secret-key-change-me"  # the default before this fix
HOW_TO_MAKE_ONE = "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
# SECRET_KEY=value, "SECRET_KEY": "value" or SECRET_KEY="value" in any tracked file.
WRITTEN_KEY = re.compile(r"""SECRET_KEY["']?\s*[:=]\s*["']?([A-Za-z0-9_\-.+/=]+)""")


@pytest.fixture
def no_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}


def test_create_app_refuses_to_start_without_a_secret_key(no_secret_key):
    with pytest.raises(ConfigError, match=r"SECRET_KEY is not set: put a random one") as caught:
        create_app(no_secret_key)
    assert "\n" not in str(caught.value)
    assert HOW_TO_MAKE_ONE in str(caught.value)


def keys_written_in_the_repository() -> set[str]:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    found = set()
    for name in filter(None, tracked):
        path = ROOT / name
        if path.is_file() and path.suffix not in (".png", ".ico", ".woff2"):
            found.update(WRITTEN_KEY.findall(path.read_text(errors="replace")))
    return found


def test_every_key_written_in_the_repository_is_refused(no_secret_key):
    written = keys_written_in_the_repository()
    assert PUBLIC_DEVELOPMENT_KEY in PUBLIC_SECRET_KEYS
    for key in written | PUBLIC_SECRET_KEYS:
        for mode in ({}, {"DEBUG": True}, {"TESTING": True}):
            with pytest.raises(ConfigError, match="SECRET_KEY is"):
                create_app({**no_secret_key, **mode, "SECRET_KEY": key})


@pytest.mark.parametrize("mode", [{}, {"DEBUG": True}, {"TESTING": True}],
                         ids=["production", "debug", "testing"])
@pytest.mark.parametrize("key", [PUBLIC_DEVELOPMENT_KEY, PUBLIC_DEVELOPMENT_KEY + " " * 8,
                                 PUBLIC_DEVELOPMENT_KEY.encode() + b"\n" * 8, "x",
                                 "k" * (MIN_SECRET_KEY_BYTES - 1),
                                 "é" * (MIN_SECRET_KEY_BYTES // 2 - 1)],  # 30 bytes
                         ids=["public", "public padded to 32 bytes", "public as bytes, padded",
                              "one byte", "31 bytes", "30 bytes in 15 characters"])
def test_a_public_or_short_key_is_refused_in_every_mode(no_secret_key, mode, key):
    with pytest.raises(ConfigError) as caught:
        create_app({**no_secret_key, **mode, "SECRET_KEY": key})
    message = str(caught.value)
    assert message.startswith("SECRET_KEY is ") and "\n" not in message
    assert HOW_TO_MAKE_ONE in message


def test_a_key_of_32_random_bytes_is_used(no_secret_key, monkeypatch):
    key = secrets.token_urlsafe(24)  # 32 characters
    monkeypatch.setenv("SECRET_KEY", key)
    assert create_app(no_secret_key).config["SECRET_KEY"] == key


@pytest.mark.parametrize("mode", ["DEBUG", "TESTING"])
def test_debugging_without_a_key_uses_a_random_one_kept_in_the_instance_folder(
        no_secret_key, mode):
    app = create_app({**no_secret_key, mode: True})
    stored = Path(app.instance_path) / DEV_SECRET_KEY_FILE
    key = app.config["SECRET_KEY"]
    assert key not in PUBLIC_SECRET_KEYS and len(key.encode()) >= MIN_SECRET_KEY_BYTES
    assert stored.read_text() == key
    assert stored.stat().st_mode & 0o077 == 0  # its owner's only
    # The next process (a reload, another gunicorn worker) signs with the same key.
    assert create_app({**no_secret_key, mode: True}).config["SECRET_KEY"] == key


def forged_token(admin: User) -> str:
    """An API token as webapp/accounts/tokens.py makes them, signed with the public development key
    (the epoch is a small number, easily guessed)."""
    return URLSafeTimedSerializer(PUBLIC_DEVELOPMENT_KEY, salt="resound.api-token").dumps(
        {"uid": admin.id, "epoch": admin.session_epoch})


def forged_session_cookie(admin: User) -> str:
    """A Flask-Login session cookie for the admin, signed with the public development key."""
    attacker = Flask("attacker")
    attacker.secret_key = PUBLIC_DEVELOPMENT_KEY
    serializer = SecureCookieSessionInterface().get_signing_serializer(attacker)
    return serializer.dumps({"_user_id": admin.get_id(), "_fresh": True})


@pytest.mark.sqlite_only("signing, not the database")
@pytest.mark.parametrize("config", [{"DEBUG": True}, {"SECRET_KEY": secrets.token_hex(32)}],
                         ids=["debug without a key", "a key of its own"])
def test_the_forged_admin_token_and_cookie_are_refused(make_app, monkeypatch, config):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    app = make_app(**{"SECRET_KEY": None, **config})
    with app.app_context():
        admin = db.session.scalar(db.select(User).where(User.email == ADMIN))
        token, cookie = forged_token(admin), forged_session_cookie(admin)
    client = app.test_client()
    answer = client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401, answer.json
    client.set_cookie("session", cookie)
    page = client.get("/admin/orders")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login")


def flask_routes(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``flask --app webapp routes`` (any command creates the app) with ``env`` alone."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "routes"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def clean_env(tmp_path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("SECRET_KEY", "FLASK_DEBUG")}
    env.update(FLASK_SKIP_DOTENV="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    return env


def test_the_flask_command_exits_with_the_one_line_that_says_how(clean_env, tmp_path):
    run = flask_routes(clean_env)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].endswith(
        "(scripts/run.sh writes one into .env), or run with --debug for development"), run.stderr
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize("key", [PUBLIC_DEVELOPMENT_KEY, "short"])
def test_flask_debug_with_a_bad_key_exits_with_one_line_naming_secret_key(clean_env, key):
    run = flask_routes({**clean_env, "FLASK_DEBUG": "1", "SECRET_KEY": key})
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "SECRET_KEY is " in last and HOW_TO_MAKE_ONE in last, run.stderr
