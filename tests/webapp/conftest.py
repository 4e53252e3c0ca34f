"""Fixtures for the webapp tests: a seeded app on SQLite and on PostgreSQL, and API logins.

Every test that uses ``make_app`` (or ``app``, ``client``, ``database``) runs once per database:
``[sqlite]`` on a temporary file, ``[postgresql]`` on the session's own PostgreSQL server
(tests/postgres.py). A test that depends on SQLite itself (its file, its locking) is marked
``@pytest.mark.sqlite_only("why")`` and runs on SQLite alone, and so do the modules in
:data:`NOT_ABOUT_THE_DATABASE` and the tests marked ``not_about_the_database``.

Seeding hashes three passwords, so it runs once per session into a template (a file that each
test copies; a database that each test clones with ``CREATE DATABASE ... TEMPLATE``). The demo
users' hashes there are cheap ones (``tests.servers.TEST_PASSWORD_HASH``), so that each sign-in
costs the tests no scrypt.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2.bccache import Bucket, BytecodeCache

from tests.clients.webapp_api import ADMIN, ALICE, BOB, PASSWORD
from tests.postgres import PostgresServer
from tests.servers import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    UNCAPPED,
    WEBAPP_SECRET_KEY,
    free_port,
    seed_for_tests,
)
from webapp import create_app
from webapp.extensions import db

DATABASES = ("sqlite", "postgresql")
DELIVERY_JOIN_TIMEOUT = 30.0  # seconds; a delivery pass is over within OUTBOX_HTTP_TIMEOUT


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test depends on SQLite itself; not run on PostgreSQL")
    config.addinivalue_line(
        "markers", "postgresql_only: the test is of what only PostgreSQL has (LISTEN/NOTIFY)")
    config.addinivalue_line(
        "markers", "not_about_the_database: the test is of HTTP, signatures or parsing, refused "
        "before the database is written; it runs on SQLite alone")


# Modules about HTTP, headers, pages, redirects, error pages, JSON bodies (and their fuzzing),
# signatures and rate limits, for which the database is only
# where the seeded users are: they run on SQLite alone, to keep the suite short.
NOT_ABOUT_THE_DATABASE = frozenset({
    "test_api_boundaries", "test_broadcasting_auth", "test_channel_rules",
    "test_delivery_transport", "test_error_pages", "test_fuzz", "test_json_unicode",
    "test_login_next", "test_login_rate_limit", "test_pages", "test_security_headers",
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that needs a database on every database, or on SQLite when marked so (or
    in a module of :data:`NOT_ABOUT_THE_DATABASE`), or on PostgreSQL when marked so."""
    if "database" in metafunc.fixturenames:
        only_sqlite = any(metafunc.definition.get_closest_marker(name) is not None
                          for name in ("sqlite_only", "not_about_the_database")) or \
            metafunc.module.__name__.rpartition(".")[2] in NOT_ABOUT_THE_DATABASE
        only_postgresql = metafunc.definition.get_closest_marker("postgresql_only") is not None
        kinds = ["sqlite"] if only_sqlite else ["postgresql"] if only_postgresql else DATABASES
        metafunc.parametrize("database", list(kinds), indirect=True)


def app_config(database: Path | str, **overrides: Any) -> dict[str, Any]:
    """The test settings; ``database`` is a SQLite file or a database URL."""
    config = {
        "DATABASE_URL": database if isinstance(database, str) else f"sqlite:///{database}",
        "SECRET_KEY": WEBAPP_SECRET_KEY,
        "REVERB_APP_ID": APP_ID,
        "REVERB_APP_KEY": APP_KEY,
        "REVERB_APP_SECRET": APP_SECRET,
        "REVERB_HOST": "127.0.0.1",
        "REVERB_PORT": free_port(),  # nothing listens here unless a test starts a broadcaster
        "REVERB_SCHEME": "http",
        "OUTBOX_DELIVER_ON_COMMIT": False,
        # Tests not about the cap place more orders than a customer may have pending.
        "PENDING_ORDERS_PER_CUSTOMER": UNCAPPED,
        "TESTING": True,
    }
    config.update(overrides)
    return config


def seed(url: str) -> None:
    app = create_app(app_config(url))
    with app.app_context():
        seed_for_tests()
        db.engine.dispose()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "seeded.sqlite3"
    seed(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started when a test first needs it."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    name = postgres.create_database()
    seed(postgres.url(name))
    return name


@dataclass
class Databases:
    """Fresh databases of one kind for a test: :meth:`seeded` copies the seeded template,
    :meth:`empty` has no table yet. Each is a URL; the PostgreSQL ones are dropped after it."""

    kind: str
    tmp_path: Path
    request: pytest.FixtureRequest
    made: list[str] = field(default_factory=list)

    def seeded(self) -> str:
        return self._new(seeded=True)

    def empty(self) -> str:
        return self._new(seeded=False)

    def _new(self, seeded: bool) -> str:
        if self.kind == "sqlite":
            path = self.tmp_path / f"db{len(self.made)}.sqlite3"
            if seeded:
                shutil.copy(self.request.getfixturevalue("seeded_template"), path)
            self.made.append(str(path))
            return f"sqlite:///{path}"
        server: PostgresServer = self.request.getfixturevalue("postgres")
        template = self.request.getfixturevalue("postgres_template") if seeded else None
        name = server.create_database(template)
        self.made.append(name)
        return server.url(name)

    def drop(self) -> None:
        if self.kind == "postgresql":
            server: PostgresServer = self.request.getfixturevalue("postgres")
            for name in self.made:
                server.drop_database(name)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    """Fresh databases of the test's kind (parametrized: see :func:`pytest_generate_tests`)."""
    databases = Databases(request.param, tmp_path, request)
    yield databases
    databases.drop()


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept for every app of the test process: each test's app is a
    new one, and compiling the templates again was a quarter of the page tests' time. Jinja
    compiles a template again whenever its source changed (the bucket checks a checksum)."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


@pytest.fixture
def make_app(database: Databases) -> Iterator[Callable[..., Flask]]:
    """``make_app(**config)``: a fresh seeded app; config overrides the test defaults."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(app_config(database.seeded(), **overrides))
        app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
        apps.append(app)
        return app

    yield make
    for app in apps:
        for name in ("outbox_deliverer", "outbox_notifier"):
            thread = app.extensions.get(name)
            if thread is not None:  # its pass in flight ends before the database goes
                thread.stop(DELIVERY_JOIN_TIMEOUT)
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


def place(client: FlaskClient, headers: dict[str, str], count: int, product_id: int = 1,
          quantity: int = 1) -> list[int]:
    """Place ``count`` orders of ``quantity`` x ``product_id`` through the API; their ids."""
    ids = []
    for _ in range(count):
        answer = client.post("/api/orders", headers=headers,
                             json={"items": [{"product_id": product_id, "quantity": quantity}]})
        assert answer.status_code == 201, answer.json
        ids.append(answer.json["order"]["id"])
    return ids


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
