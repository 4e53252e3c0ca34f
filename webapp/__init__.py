"""Resound webapp: Flask order management that broadcasts every order change.

``flask --app webapp run|seed|worker`` finds :func:`create_app` here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from typing import Any

from flask import Flask
from sqlalchemy import event

from . import config as app_config
from .accounts import login_limits
from .broadcasting import auth as broadcasting_auth
from .broadcasting import delivery, webhooks
from .broadcasting.worker import worker_command
from .extensions import csrf, db, login_manager, migrate
from .orders.status import OrderStatus
from .seed import seed_command
from .web import api, errors, headers, pages
from .web.converters import IdConverter
from .web.jsonbodies import StrictJSONProvider


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app, configured from the environment and then from ``config``."""
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    values = app_config.load(os.environ, config)
    app.config.update(values)
    app.config["SECRET_KEY"] = app_config.secret_key(values, app.debug or app.testing,
                                                     app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = app_config.database_uri(values, app.instance_path)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    app.url_map.converters["id"] = IdConverter
    app.jinja_env.globals["STATUS_LABELS"] = {status.value: status.label for status in OrderStatus}
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 15}})

    db.init_app(app)
    migrate.init_app(app, db)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "pages.login"
    delivery.deliver_after_commits()
    errors.init_app(app)
    headers.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(broadcasting_auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(webhooks.bp)
    login_limits.init_app(app)
    app.cli.add_command(seed_command)
    app.cli.add_command(worker_command)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect",
                         partial(_sqlite_pragmas, synchronous=app.config["SQLITE_SYNCHRONOUS"]))
    return app


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, synchronous: str) -> None:
    """WAL lets the web process and the worker read while the other writes; ``synchronous``
    is SQLITE_SYNCHRONOUS."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
