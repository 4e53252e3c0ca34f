"""Configuration: Reverb's environment names, apps files, and one-line errors (pure, fast)."""

import re

import pytest

from broadcaster.config import ConfigError, MessageRateLimit, load_config
from broadcaster.server.cli import main
from tests.certificates import make_certificates

CREDS = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}


def test_defaults_follow_reverb():
    config = load_config(CREDS)
    [app] = config.apps
    assert (config.host, config.port, config.path) == ("0.0.0.0", 8080, "")
    assert (app.id, app.key, app.secret) == ("1", "k", "s")
    assert app.activity_timeout == 30 and app.ping_interval == 60
    assert app.max_message_size == 10_000 and app.max_connections is None
    assert app.accept_client_events_from == "members" and app.allowed_origins == ("*",)
    assert app.max_presence_members == 100
    assert not config.dev_app


def test_environment_settings_and_cli_overrides():
    config = load_config({
        **CREDS, "REVERB_SERVER_HOST": "10.0.0.1", "REVERB_SERVER_PORT": "9000",
        "REVERB_SERVER_PATH": "/ws/", "REVERB_APP_PING_INTERVAL": "0.5",
        "REVERB_APP_ACTIVITY_TIMEOUT": "12", "REVERB_APP_MAX_MESSAGE_SIZE": "2000",
        "REVERB_APP_MAX_CONNECTIONS": "5", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "all",
        "REVERB_ALLOWED_ORIGINS": "*.example.com, localhost",
        "REVERB_APP_MAX_PRESENCE_MEMBERS": "500",
    }, host="127.0.0.1")
    [app] = config.apps
    assert (config.host, config.port, config.path) == ("127.0.0.1", 9000, "/ws")
    assert app.ping_interval == 0.5 and app.activity_timeout == 12
    assert app.max_message_size == 2000 and app.max_connections == 5
    assert app.accept_client_events_from == "all"
    assert app.allowed_origins == ("*.example.com", "localhost")
    assert app.max_presence_members == 500


def test_no_configuration_gives_a_random_dev_app():
    first, second = load_config({}), load_config({})
    assert first.dev_app and len(first.apps) == 1
    assert first.apps[0].key != second.apps[0].key
    assert load_config({"REVERB_APP_ACTIVITY_TIMEOUT": "9"}).apps[0].activity_timeout == 9


def test_idempotency_keys_are_remembered_five_minutes_unless_set():
    assert load_config(CREDS).idempotency_window == 300
    assert load_config({**CREDS, "RESOUND_IDEMPOTENCY_WINDOW": "30"}).idempotency_window == 30


def test_json_apps_file_and_env_app_together(tmp_path):
    file = tmp_path / "apps.json"
    file.write_text('{"apps": [{"id": 2, "key": "two", "secret": "s2", '
                    '"allowed_origins": ["a.test"], "max_connections": 3, '
                    '"max_presence_members": 1000}]}')
    config = load_config({**CREDS, "REVERB_APPS_FILE": str(file)})
    assert [app.key for app in config.apps] == ["k", "two"]
    assert config.apps[1].id == "2" and config.apps[1].allowed_origins == ("a.test",)
    assert config.apps[1].max_presence_members == 1000
    assert config.apps[0].max_presence_members == 100


@pytest.mark.parametrize("env, fragment", [
    ({**CREDS, "REVERB_APP_PING_INTERVAL": "x"}, "REVERB_APP_PING_INTERVAL must be a number"),
    ({**CREDS, "REVERB_APP_ACTIVITY_TIMEOUT": "0"}, "REVERB_APP_ACTIVITY_TIMEOUT must be at"),
    ({**CREDS, "REVERB_SERVER_PORT": "http"}, "REVERB_SERVER_PORT"),
    ({"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k"}, "REVERB_APP_SECRET is missing"),
    ({**CREDS, "REVERB_ALLOWED_ORIGINS": ","}, "REVERB_ALLOWED_ORIGINS is empty"),
    ({**CREDS, "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "x"}, "one of members, all, none"),
    ({**CREDS, "REVERB_APP_MAX_PRESENCE_MEMBERS": "0"},
     "REVERB_APP_MAX_PRESENCE_MEMBERS must be at least 1"),
    ({**CREDS, "REVERB_APP_MAX_PRESENCE_MEMBERS": "many"},
     "REVERB_APP_MAX_PRESENCE_MEMBERS must be a number"),
    ({**CREDS, "RESOUND_WRITE_BUFFER_LIMIT": "-1"}, "RESOUND_WRITE_BUFFER_LIMIT"),
    ({**CREDS, "RESOUND_HTTP_IDLE_TIMEOUT": "0"}, "RESOUND_HTTP_IDLE_TIMEOUT must be at"),
    ({**CREDS, "RESOUND_IDEMPOTENCY_WINDOW": "0"}, "RESOUND_IDEMPOTENCY_WINDOW must be at"),
    ({**CREDS, "RESOUND_IDEMPOTENCY_WINDOW": "5m"}, "RESOUND_IDEMPOTENCY_WINDOW must be a"),
])
def test_bad_settings_name_themselves(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(env)


@pytest.mark.parametrize("text, suffix, fragment", [
    ("{", ".json", "not valid JSON"),
    ("apps = 3", ".toml", "non-empty list 'apps'"),
    ('{"apps": [5]}', ".json", r"apps\[0\] must be a table"),
    ('{"apps": [{"id": "1", "key": "k"}]}', ".json", r"apps\[0\].secret is missing"),
    ('{"apps": [{"id": "1", "key": "k", "secret": "s", "ping_interval": "soon"}]}', ".json",
     r"apps\[0\].ping_interval must be a number"),
    ('{"apps": [{"id": "1", "key": "k", "secret": "s", "max_presence_members": -5}]}', ".json",
     r"apps\[0\].max_presence_members must be at least 1"),
    ('[[apps]]\nid="1"\nkey="k"\nsecret="s"\n[[apps]]\nid="2"\nkey="k"\nsecret="t"\n', ".toml",
     "app key 'k' is used by two apps"),
])
def test_bad_apps_files_name_the_entry(tmp_path, text, suffix, fragment):
    file = tmp_path / f"apps{suffix}"
    file.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config({}, apps_file=str(file))


@pytest.mark.parametrize("env, url", [
    ({}, None),
    ({"REVERB_SCALING_ENABLED": "false", "REDIS_URL": "redis://x:1/0"}, None),
    ({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis://r.test:7000/2"},
     "redis://r.test:7000/2"),
    ({"REVERB_SCALING_ENABLED": "true"}, "redis://127.0.0.1:6379/0"),
    ({"REVERB_SCALING_ENABLED": "1", "REDIS_HOST": "r.test", "REDIS_PORT": "7000",
      "REDIS_PASSWORD": "p@ss", "REDIS_DB": "3"}, "redis://:p%40ss@r.test:7000/3"),
    ({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis+cluster://a.test:7000,b.test:7001"},
     "redis+cluster://a.test:7000,b.test:7001"),
    ({"REVERB_SCALING_ENABLED": "true",
      "REDIS_URL": "redis+sentinel://a.test:26379,b.test:26379/main"},
     "redis+sentinel://a.test:26379,b.test:26379/main"),
])
def test_scaling_through_redis_follows_reverb_settings(env, url):
    assert load_config({**CREDS, **env}).scaling_url == url


@pytest.mark.parametrize("env, fragment", [
    ({"REVERB_SCALING_ENABLED": "maybe"}, "REVERB_SCALING_ENABLED must be true or false"),
    ({"REVERB_SCALING_ENABLED": "true", "REDIS_PORT": "x"}, "REDIS_PORT must be a number"),
    ({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "r.test:1"},
     "REDIS_URL: a Redis URL must start with redis://"),
    ({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis+cluster://a.test,b.test:7000"},
     "REDIS_URL: 'redis\\+cluster://a.test,b.test:7000' has 'a.test' where host:port belongs"),
    ({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis+sentinel://:pw@a.test:26379"},
     r"REDIS_URL: 'redis\+sentinel://:\*\*\*@a.test:26379' names no master"),
])
def test_bad_scaling_settings_name_themselves(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config({**CREDS, **env})


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_start_help_lists_each_setting_on_a_line_of_its_own_under_a_heading(capsys):
    text = help_of(capsys, "start")
    settings = text[text.index("settings (environment variables"):]
    lines = settings.splitlines()
    assert re.search(r"^  REVERB_APP_MAX_PRESENCE_MEMBERS +100 +members per presence channel$",
                     settings, re.MULTILINE), settings
    assert {"Server:", "Scaling (several processes or machines as one server):", "Limits:",
            "Metrics:"} <= set(lines)
    rows = [line for line in lines if re.match(r"  [A-Z]", line)]
    # one setting (and its flag) per line, its default starting in the same column on each
    starts = {re.match(r"  [A-Z_]+(?:, --[a-z-]+)? {2,}(?=\S)", row) for row in rows}
    assert None not in starts, rows
    assert len({start.end() for start in starts}) == 1, rows
    assert "true/false, 1/0, yes/no or on/off" in settings


def test_top_level_help_is_plain_text(capsys):
    text = help_of(capsys)
    assert "``" not in text and ":mod:" not in text and "start --help" in text


@pytest.mark.parametrize("spelling, on", [
    ("true", True), ("1", True), ("yes", True), ("on", True), ("ON", True), ("True", True),
    ("false", False), ("0", False), ("no", False), ("off", False), ("Off", False), ("", False),
])
def test_every_yes_or_no_setting_takes_the_same_spellings(spelling, on):
    config = load_config({**CREDS, "REVERB_SCALING_ENABLED": spelling,
                          "RESOUND_LOG_CONNECTIONS": spelling,
                          "RESOUND_APP_WATCHLIST_EVENTS": spelling})
    assert (config.scaling_url is not None, config.log_connections,
            config.apps[0].watchlist_events) == (on, on, on)


@pytest.mark.parametrize("name", ["REVERB_SCALING_ENABLED", "RESOUND_LOG_CONNECTIONS",
                                  "REVERB_APP_RATE_LIMITING_ENABLED",
                                  "RESOUND_APP_WEBHOOK_BATCHING"])
def test_a_bad_yes_or_no_value_is_refused_with_the_spellings_listed(name):
    with pytest.raises(ConfigError) as refused:
        load_config({**CREDS, name: "maybe"})
    assert str(refused.value) == (f"{name} must be true or false (true/false, 1/0, yes/no or "
                                  "on/off), got 'maybe'")


# --- issue 12: ports, finite numbers, TLS files, Reverb's rate limiting, the API limit ------

@pytest.mark.parametrize("env, message", [
    ({**CREDS, "REVERB_SERVER_PORT": "99999"}, "REVERB_SERVER_PORT must be at most 65535"),
    ({**CREDS, "REVERB_SERVER_PORT": "0"}, "REVERB_SERVER_PORT must be at least 1"),
    ({**CREDS, "REVERB_SCALING_ENABLED": "true", "REDIS_PORT": "70000"},
     "REDIS_PORT must be at most 65535"),
    ({**CREDS, "REVERB_APP_PING_INTERVAL": "nan"},
     "REVERB_APP_PING_INTERVAL must be a finite number, got 'nan'"),
    ({**CREDS, "RESOUND_HTTP_IDLE_TIMEOUT": "inf"},
     "RESOUND_HTTP_IDLE_TIMEOUT must be a finite number, got 'inf'"),
    ({**CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "maybe"},
     "REVERB_APP_RATE_LIMITING_ENABLED must be true or false ("),
    ({**CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "true",
      "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "0"},
     "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS must be at least 1"),
    ({**CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "true",
      "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": "-inf"},
     "REVERB_APP_RATE_LIMIT_DECAY_SECONDS must be a finite number"),
    ({**CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "true",
      "REVERB_APP_RATE_LIMIT_TERMINATE": "kill"},
     "REVERB_APP_RATE_LIMIT_TERMINATE must be true or false"),
    ({**CREDS, "RESOUND_APP_API_RATE_LIMIT": "0.5"},
     "RESOUND_APP_API_RATE_LIMIT must be at least 1"),
    ({**CREDS, "REVERB_MAX_REQUEST_SIZE": "big"}, "REVERB_MAX_REQUEST_SIZE must be a number"),
    ({**CREDS, "RESOUND_LOG_CONNECTIONS": "loud"}, "RESOUND_LOG_CONNECTIONS must be true or false"),
    ({**CREDS, "RESOUND_TLS_CERT": "/some/cert.pem"},
     "RESOUND_TLS_CERT and RESOUND_TLS_KEY go together"),
    ({**CREDS, "RESOUND_TLS_CERT": "/nonexistent/cert.pem", "RESOUND_TLS_KEY": "/nonexistent/k"},
     "RESOUND_TLS_CERT /nonexistent/cert.pem is not a readable file"),
])
def test_refused_settings_say_what_was_wrong(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(env)


def test_port_from_the_flag_is_checked_too():
    with pytest.raises(ConfigError, match="--port must be at most 65535, got 65536"):
        load_config(CREDS, port=65536)


def test_a_broken_certificate_or_a_key_that_does_not_match_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    made, other = make_certificates(tmp_path), make_certificates(tmp_path / "other")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for cert, key in ((broken, made.key), (made.cert, other.key)):
        with pytest.raises(ConfigError, match="not a usable PEM certificate and matching key"):
            load_config({**CREDS, "RESOUND_TLS_CERT": str(cert), "RESOUND_TLS_KEY": str(key)})
    config = load_config({**CREDS, "RESOUND_TLS_CERT": str(made.cert),
                          "RESOUND_TLS_KEY": str(made.key)})
    assert (config.tls_cert, config.tls_key) == (str(made.cert), str(made.key))


def test_reverb_rate_limiting_and_request_size_are_read_under_reverbs_names():
    config = load_config({
        **CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "true",
        "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "5", "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": "2",
        "REVERB_APP_RATE_LIMIT_TERMINATE": "true", "REVERB_MAX_REQUEST_SIZE": "2000",
        "RESOUND_APP_API_RATE_LIMIT": "20",
    })
    [app] = config.apps
    assert app.message_rate_limit == MessageRateLimit(5, 2.0, True)
    assert app.api_rate_limit == 20 and config.max_request_size == 2000
    assert load_config({**CREDS, "REVERB_MAX_REQUEST_SIZE": "2000",
                        "RESOUND_MAX_REQUEST_SIZE": "3000"}).max_request_size == 3000
    # Reverb's defaults: off, and 60 messages per 60 s without terminating when enabled.
    assert load_config(CREDS).apps[0].message_rate_limit is None
    assert load_config({**CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "false",
                        "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "5"}).apps[0].message_rate_limit \
        is None
    enabled = load_config({**CREDS, "REVERB_APP_RATE_LIMITING_ENABLED": "true"})
    assert enabled.apps[0].message_rate_limit == MessageRateLimit(60, 60.0, False)


def test_apps_file_takes_reverbs_rate_limiting_table(tmp_path):
    file = tmp_path / "apps.toml"
    file.write_text('[[apps]]\nid = "2"\nkey = "two"\nsecret = "s"\napi_rate_limit = 5\n'
                    '[apps.rate_limiting]\nenabled = true\nmax_attempts = 10\n'
                    'decay_seconds = 1\nterminate_on_limit = true\n')
    [app] = load_config({"REVERB_APPS_FILE": str(file)}).apps
    assert app.message_rate_limit == MessageRateLimit(10, 1.0, True) and app.api_rate_limit == 5
    file.write_text('[[apps]]\nid = "2"\nkey = "two"\nsecret = "s"\n'
                    '[apps.rate_limiting]\nenabled = true\nmax_attempts = "lots"\n')
    with pytest.raises(ConfigError, match=r"apps\[0\].rate_limiting.max_attempts must be a"):
        load_config({"REVERB_APPS_FILE": str(file)})


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert re.fullmatch(r"broadcaster \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)
