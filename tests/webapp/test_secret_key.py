"""Without a SECRET_KEY the app refuses to start, except when debugging or testing: the old
default key was public, and anyone could sign an admin's session or API token with it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.clients.driver import ROOT
from webapp import create_app
from webapp.config import DEV_SECRET_KEY, ConfigError


@pytest.fixture
def no_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}


def test_create_app_refuses_to_start_without_a_secret_key(no_secret_key):
    with pytest.raises(ConfigError, match=r"SECRET_KEY is not set: put SECRET_KEY=") as caught:
        create_app(no_secret_key)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("mode", ["DEBUG", "TESTING"])
def test_debugging_and_testing_start_with_the_development_key(no_secret_key, mode):
    app = create_app({**no_secret_key, mode: True})
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY


def test_the_key_from_the_environment_is_used(no_secret_key, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert create_app(no_secret_key).config["SECRET_KEY"] == "from-the-environment"


def test_the_flask_command_exits_with_the_one_line_that_says_how(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("SECRET_KEY", "FLASK_DEBUG")}
    env.update(FLASK_SKIP_DOTENV="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    run = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "routes"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].endswith(
        "scripts/run.sh writes one), or run with --debug for development"), run.stderr
    assert not (tmp_path / "db.sqlite3").exists()
