"""The database schema, made the ``db.create_all()`` way: there is no migration framework yet.

``create_all`` makes missing tables but never changes an existing one, so each column added to a
table after its first release is listed in :data:`ADDED_COLUMNS` and added here to a database
made before it (a new table, such as ``live_presence``, needs no entry: ``create_all`` makes it).
``flask --app webapp seed`` runs this (``scripts/run.sh`` runs seed each start).
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect, text

from .extensions import db

log = logging.getLogger(__name__)

# (table, column, its SQL type and default): valid DDL on SQLite and PostgreSQL alike.
ADDED_COLUMNS = [
    ("users", "session_epoch", "INTEGER NOT NULL DEFAULT 0"),
]


def create_schema() -> None:
    """Create missing tables, then add the columns that tables made by older versions lack."""
    db.create_all()
    inspector = inspect(db.engine)
    for table, column, definition in ADDED_COLUMNS:
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            db.session.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {definition}"))
            log.info("added column %s.%s to a database made before it", table, column)
    db.session.commit()
