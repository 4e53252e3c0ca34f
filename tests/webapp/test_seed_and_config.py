"""``flask --app webapp seed`` (safe to run again) and configuration from the environment."""

from __future__ import annotations

import pytest
from flask import Flask

from webapp import config as app_config
from webapp import create_app
from webapp.extensions import db
from webapp.orders.models import Order, OrderStatusHistory, User
from webapp.orders.products import Product


def counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(db.select(db.func.count()).select_from(model))
                     for model in (User, Product, Order, OrderStatusHistory))


def test_seed_prints_the_url_and_logins_and_can_run_again(app: Flask):
    before = counts(app)
    assert before == (3, 6, 6, 17)
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert "Open http://127.0.0.1:5000" in result.output
    for email in ("admin@example.com", "alice@example.com", "bob@example.com"):
        assert email in result.output
    assert "password" in result.output
    assert counts(app) == before


def test_seed_covers_every_non_final_status_for_the_demo(app: Flask):
    with app.app_context():
        statuses = {o.status.value for o in db.session.scalars(db.select(Order))}
    assert {"pending", "paid", "processing", "shipped", "delivered"} <= statuses


def test_environment_configures_the_app_and_explicit_config_wins(tmp_path):
    env = {"REVERB_PORT": "9001", "REVERB_APP_KEY": "from-env", "OUTBOX_DELIVER_ON_COMMIT": "0",
           "OUTBOX_IDLE_SECONDS": "0.25"}
    values = app_config.load(env, {"REVERB_APP_KEY": "explicit"})
    assert (values["REVERB_PORT"], values["REVERB_APP_KEY"], values["OUTBOX_DELIVER_ON_COMMIT"],
            values["OUTBOX_IDLE_SECONDS"]) == (9001, "explicit", False, 0.25)


def test_a_malformed_environment_value_names_the_variable():
    with pytest.raises(ValueError, match="REVERB_PORT=.eighty. is not a valid int"):
        app_config.load({"REVERB_PORT": "eighty"}, None)


def test_sqlite_in_the_instance_folder_by_default_and_database_url_otherwise(tmp_path,
                                                                             monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    default = create_app({"TESTING": True})
    assert default.config["SQLALCHEMY_DATABASE_URI"] == (
        f"sqlite:///{default.instance_path}/resound.sqlite3")
    chosen = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "TESTING": True})
    assert chosen.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/x.db"
