"""Alembic's environment for ``flask --app webapp db ...`` and for :func:`webapp.schema.upgrade`.

It migrates the app's own database (``DATABASE_URL``) against the models' metadata. Logging is
left to the app (quiet by default): Alembic's warnings still show.
"""

from __future__ import annotations

from alembic import context
from flask import current_app

config = context.config
migrate = current_app.extensions["migrate"]
metadata = migrate.db.metadata


def skip_empty_autogenerate(_context, _revision, directives) -> None:
    """``flask db migrate`` with no schema change writes no empty migration."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        print("No change in the models' schema: no migration written.")


def run_offline() -> None:
    """``flask db upgrade --sql``: print the SQL instead of running it."""
    url = migrate.db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=metadata, literal_binds=True,
                      **migrate.configure_args)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    arguments = dict(migrate.configure_args)
    arguments.setdefault("process_revision_directives", skip_empty_autogenerate)
    with migrate.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, **arguments)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
