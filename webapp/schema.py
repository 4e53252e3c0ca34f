"""The database schema comes from the Alembic migrations in ``webapp/migrations``
(Flask-Migrate): ``flask --app webapp db upgrade``, ``seed`` and ``scripts/run.sh`` apply them.

A database made before migrations (by ``db.create_all()``: tables, no ``alembic_version``) is
adopted by the initial migration, which makes only what that database lacks
(:func:`create_table_if_missing`). A migration for a table that ``create_all`` may already have
made (one added to the models before its migration) uses it too.
"""

from __future__ import annotations

import flask_migrate
import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext

from .extensions import db


def current_revision() -> str | None:
    """The revision the database is at; None before any migration ran."""
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema() -> None:
    """Apply every migration the database lacks (``flask --app webapp db upgrade``)."""
    flask_migrate.upgrade(revision="head")


def create_table_if_missing(name: str, *elements: sa.schema.SchemaItem,
                            indexes: dict[str, tuple[str, bool]]) -> None:
    """In a migration: create table ``name`` and its ``indexes`` ({index: (column, unique)}),
    unless the database already has it (made by ``db.create_all()``)."""
    if name in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(name, *elements)
    for index, (column, unique) in indexes.items():
        op.create_index(index, name, [column], unique=unique)
