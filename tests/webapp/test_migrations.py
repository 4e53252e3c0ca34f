"""The schema comes from the Alembic migrations (webapp/migrations): they make exactly the
models' schema on SQLite and on PostgreSQL, and they adopt a database made the older
``db.create_all()`` way, so an existing install keeps its data and works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import MetaData, UniqueConstraint, inspect, text

from tests.clients.webapp_api import ALICE
from tests.postgres import PostgresServer
from tests.webapp.conftest import Databases, app_config, login
from webapp import create_app
from webapp.extensions import MIGRATIONS, db
from webapp.schema import current_revision, upgrade_schema
from webapp.seed import seed_database

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def differences(app: Flask) -> list:
    """What Alembic's autogenerate would change to make the database match the models."""
    with app.app_context(), db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), db.metadata)


def test_the_migrations_make_exactly_the_models_schema(database: Databases):
    app = create_app(app_config(database.empty()))
    with app.app_context():
        assert current_revision() is None
        upgrade_schema()
        assert current_revision() == HEAD
        db.engine.dispose()
    assert differences(app) == []


def test_seeding_twice_keeps_the_schema_at_head_and_the_data(make_app):
    app = make_app()
    with app.app_context():
        users = db.session.scalar(text("SELECT count(*) FROM users"))
        seed_database()
        assert current_revision() == HEAD
        assert db.session.scalar(text("SELECT count(*) FROM users")) == users == 3
        db.session.remove()
    assert differences(app) == []


def make_legacy_schema() -> None:
    """The models' tables as ``db.create_all()`` made them before migrations: without the
    naming convention, ``live_presence`` or ``users.session_epoch`` (both came later), nor what
    the migrations after the initial one add (``idempotency_keys``, ``outbox_events.kind``)."""
    legacy = MetaData()
    for table in db.metadata.sorted_tables:
        if table.name not in ("live_presence", "idempotency_keys"):
            table.to_metadata(legacy)
    legacy.create_all(db.engine)
    db.session.execute(text("ALTER TABLE users DROP COLUMN session_epoch"))
    db.session.execute(text("ALTER TABLE outbox_events DROP COLUMN kind"))


def test_a_database_made_by_create_all_before_migrations_is_adopted(database: Databases):
    app = create_app(app_config(database.empty()))
    with app.app_context():
        make_legacy_schema()
        db.session.execute(text(
            "INSERT INTO users (id, name, email, password_hash, is_admin) "
            "VALUES (7, 'Old Customer', 'old@example.com', 'x', false)"))
        db.session.commit()

        seed_database()  # what scripts/run.sh runs on every start

        assert current_revision() == HEAD
        tables = inspect(db.engine).get_table_names()
        assert {"live_presence", "alembic_version"} <= set(tables)
        assert db.session.execute(text(
            "SELECT name, session_epoch FROM users WHERE id = 7")).one() == ("Old Customer", 0)
        db.session.remove()
        db.engine.dispose()
    with app.app_context():
        found = differences(app)
        assert [d for d in found if not unique_under_another_name(d)] == []
        db.engine.dispose()
    client = app.test_client()
    assert client.get("/api/orders", headers=login(client, ALICE)).status_code == 200


def unique_under_another_name(difference: tuple) -> bool:
    """A unique constraint the database has on the same columns, named its own way
    (``products_name_key``) or unnamed (SQLite) where the migrations use the naming convention:
    the same constraint under another name, which the adoption leaves as it is."""
    kind, constraint = difference[0], difference[1]
    if kind not in ("add_constraint", "remove_constraint") or \
            not isinstance(constraint, UniqueConstraint):
        return False
    present = inspect(db.engine).get_unique_constraints(constraint.table.name)
    return [c.name for c in constraint.columns] in [u["column_names"] for u in present]


def test_a_plain_postgresql_url_is_driven_by_psycopg(postgres: PostgresServer):
    name = postgres.create_database()
    try:
        url = postgres.url(name).replace("postgresql+psycopg://", "postgresql://")
        app = create_app(app_config(url))
        assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
        with app.app_context():
            seed_database()
            assert db.engine.dialect.driver == "psycopg"
            db.session.remove()
            db.engine.dispose()
        client = app.test_client()
        assert client.get("/api/orders", headers=login(client, ALICE)).status_code == 200
    finally:
        postgres.drop_database(name)
