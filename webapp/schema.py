"""The database schema comes from the Alembic migrations in ``webapp/migrations``
(Flask-Migrate): ``flask --app webapp db upgrade``, ``seed`` and ``scripts/run.sh`` apply them.

A database made before migrations (by ``db.create_all()``: tables, no ``alembic_version``) is
adopted by the initial migration, which makes only what that database lacks.
"""

from __future__ import annotations

import flask_migrate
from alembic.migration import MigrationContext

from .extensions import db


def current_revision() -> str | None:
    """The revision the database is at; None before any migration ran."""
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema() -> None:
    """Apply every migration the database lacks (``flask --app webapp db upgrade``)."""
    flask_migrate.upgrade(revision="head")
