"""Fixtures for the webapp tests: a seeded app on a temporary SQLite file, and API logins.

Seeding hashes three passwords, so it runs once per session into a template file that each
test copies.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.clients.webapp_api import ADMIN, ALICE, BOB, PASSWORD
from tests.servers import APP_ID, APP_KEY, APP_SECRET, free_port
from webapp import create_app
from webapp.extensions import db
from webapp.seed import seed_database


def app_config(db_path: Path, **overrides: Any) -> dict[str, Any]:
    config = {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "SECRET_KEY": "test-secret-key",
        "REVERB_APP_ID": APP_ID,
        "REVERB_APP_KEY": APP_KEY,
        "REVERB_APP_SECRET": APP_SECRET,
        "REVERB_HOST": "127.0.0.1",
        "REVERB_PORT": free_port(),  # nothing listens here unless a test starts a broadcaster
        "REVERB_SCHEME": "http",
        "OUTBOX_DELIVER_ON_COMMIT": False,
        "TESTING": True,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "seeded.sqlite3"
    app = create_app(app_config(path))
    with app.app_context():
        seed_database()
        db.engine.dispose()
    return path


@pytest.fixture
def make_app(seeded_template: Path, tmp_path: Path):
    """``make_app(**config)``: a fresh seeded app; config overrides the test defaults."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        path = tmp_path / f"app{len(apps)}.sqlite3"
        shutil.copy(seeded_template, path)
        app = create_app(app_config(path, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def login(client: FlaskClient, email: str) -> dict[str, str]:
    """Bearer headers for a seeded user."""
    answer = client.post("/api/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.json
    return {"Authorization": f"Bearer {answer.json['token']}"}


CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token a page carries in its ``csrf-token`` meta tag."""
    return CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)


def sign_in(client: FlaskClient, email: str) -> str:
    """Sign in through the login form (cookie session); the session's CSRF token."""
    answer = client.post("/login", data={"email": email, "password": PASSWORD,
                                         "csrf_token": csrf_token(client)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return csrf_token(client, answer.headers["Location"])


@pytest.fixture
def admin(client: FlaskClient) -> dict[str, str]:
    return login(client, ADMIN)


@pytest.fixture
def alice(client: FlaskClient) -> dict[str, str]:
    return login(client, ALICE)


@pytest.fixture
def bob(client: FlaskClient) -> dict[str, str]:
    return login(client, BOB)
