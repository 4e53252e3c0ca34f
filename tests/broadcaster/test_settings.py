"""Settings that change the server's behaviour, each on its own real server process."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from websockets.exceptions import InvalidStatus

from tests.pusher_socket import PusherSocket, error
from tests.servers import HOST, free_port, start_broadcaster, wait_for_http


@contextmanager
def running(env=None, args=None):
    broadcaster = start_broadcaster(env, args)
    try:
        yield broadcaster
    finally:
        broadcaster.stop()


def test_silent_sockets_are_pinged_then_closed_with_4201():
    with running({"REVERB_APP_PING_INTERVAL": "0.4"}) as server:
        idle = PusherSocket(server.ws_url)
        subscribed = PusherSocket(server.ws_url)
        subscribed.joined("news")
        for socket in (idle, subscribed):
            assert socket.recv(timeout=3) == {"event": "pusher:ping", "data": "{}"}
        assert error(idle.recv(timeout=3))[0] == 4201
        assert idle.closed_code() == 4201
        assert subscribed.closed_code() == 4201


def test_sockets_that_answer_pings_stay_open():
    with running({"REVERB_APP_PING_INTERVAL": "0.3"}) as server:
        socket = PusherSocket(server.ws_url)
        deadline = time.monotonic() + 1.5
        pings = 0
        while time.monotonic() < deadline:
            assert socket.recv(timeout=3)["event"] == "pusher:ping"
            pings += 1
            socket.send({"event": "pusher:pong", "data": {}})
        assert pings >= 2
        socket.send({"event": "pusher:ping"})
        assert socket.recv()["event"] in ("pusher:pong", "pusher:ping")


def test_app_settings_from_the_environment():
    env = {"REVERB_APP_ACTIVITY_TIMEOUT": "7", "REVERB_APP_MAX_MESSAGE_SIZE": "300",
           "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "none"}
    with running(env) as server:
        socket = PusherSocket(server.ws_url)
        assert json.loads(socket.greeting["data"])["activity_timeout"] == 7
        socket.joined("private-a")
        socket.send({"event": "client-x", "channel": "private-a", "data": {}})
        assert error(socket.recv()) == (4009, "this app does not accept client events")
        socket.send({"event": "client-x", "channel": "private-a", "data": "x" * 300})
        assert socket.closed_code() == 1009


def test_max_presence_members_sets_the_member_cap():
    with running({"REVERB_APP_MAX_PRESENCE_MEMBERS": "2"}) as server:
        first, second, third = (PusherSocket(server.ws_url, max_queue=None) for _ in range(3))
        first.joined("presence-room", member("u1"))
        second.joined("presence-room", member("u2"))
        third.subscribe("presence-room", member("u3"))
        assert error(third.recv()) == (4004, "presence-room already has 2 members")
        assert PusherSocket(server.ws_url).joined("presence-room", member("u1"))


def member(user_id):
    return json.dumps({"user_id": user_id, "user_info": None})


def test_allowed_origins_with_wildcards():
    with running({"REVERB_ALLOWED_ORIGINS": "*.example.com, localhost"}) as server:
        for origin in ("https://shop.example.com", "http://localhost:5173"):
            socket = PusherSocket(server.ws_url, origin=origin)
            assert socket.greeting["event"] == "pusher:connection_established"
            socket.close()
        for origin in ("https://evil.test", "https://example.com.evil.test", None):
            socket = PusherSocket(server.ws_url, origin=origin)
            assert error(socket.greeting)[0] == 4009
            assert socket.closed_code() == 4009


def test_max_connections_refuses_with_4004():
    with running({"REVERB_APP_MAX_CONNECTIONS": "2"}) as server:
        first, second = PusherSocket(server.ws_url), PusherSocket(server.ws_url)
        third = PusherSocket(server.ws_url)
        assert error(third.greeting)[0] == 4004
        assert third.closed_code() == 4004
        first.close()
        deadline = time.monotonic() + 5
        while True:
            fourth = PusherSocket(server.ws_url)
            if fourth.greeting["event"] == "pusher:connection_established":
                break
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
        second.close()
        fourth.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_closes_every_socket_with_4200(signum):
    with running() as server:
        sockets = [PusherSocket(server.ws_url) for _ in range(3)]
        sockets[0].joined("news")
        server.proc.send_signal(signum)
        for socket in sockets:
            assert error(socket.recv())[0] == 4200
            assert socket.closed_code() == 4200
        assert server.proc.wait(timeout=10) == 0


def test_server_path_prefixes_the_websocket_endpoint():
    with running({"REVERB_SERVER_PATH": "/ws"}) as server:
        wait_for_http(f"{server.http_url}/ws/up")
        socket = PusherSocket(server.ws_url.replace("/app/", "/ws/app/"))
        assert socket.greeting["event"] == "pusher:connection_established"
        with pytest.raises(InvalidStatus) as refused:
            PusherSocket(server.ws_url)
        assert refused.value.response.status_code == 404


def test_apps_file_serves_several_apps(tmp_path):
    apps = tmp_path / "apps.toml"
    apps.write_text(
        '[[apps]]\nid = "1"\nkey = "one"\nsecret = "s1"\nactivity_timeout = 9\n\n'
        '[[apps]]\nid = "2"\nkey = "two"\nsecret = "s2"\n'
    )
    with running(args=["--apps", str(apps)]) as server:
        for key, timeout in (("one", 9), ("two", 30), ("test-key", 30)):
            socket = PusherSocket(server.ws_url.replace("test-key", key))
            assert json.loads(socket.greeting["data"])["activity_timeout"] == timeout
            socket.close()


def bare_env(**extra):
    env = {name: value for name, value in os.environ.items() if not name.startswith("REVERB_")}
    env.update(extra)
    return env


def start_process(env, *args):
    port = free_port()
    cmd = [sys.executable, "-m", "broadcaster", "start", "--host", HOST, "--port", str(port),
           *args]
    return port, subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def test_without_configuration_a_dev_app_is_printed_and_works():
    port, proc = start_process(bare_env())
    try:
        wait_for_http(f"http://{HOST}:{port}/up", proc=proc)
        line = ""
        while "development app" not in line:
            line = proc.stderr.readline()
            assert line, "the dev app's credentials were never printed"
        # it stands out: a production run that forgot its settings must not pass for fine
        assert " WARNING " in line and "set REVERB_APP_ID, REVERB_APP_KEY and " \
            "REVERB_APP_SECRET, or REVERB_APPS_FILE" in line, line
        settings = dict(part.split("=", 1) for part in line.split()
                        if re.fullmatch(r"REVERB_APP_[A-Z]+=\w+", part))
        assert settings.keys() == {"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET"}
        socket = PusherSocket(f"ws://{HOST}:{port}/app/{settings['REVERB_APP_KEY']}",
                        key=settings["REVERB_APP_KEY"], secret=settings["REVERB_APP_SECRET"])
        socket.joined("private-dev")
        socket.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("env, args, setting", [
    ({"REVERB_APP_PING_INTERVAL": "soon"}, [], "REVERB_APP_PING_INTERVAL"),
    ({"REVERB_APP_MAX_CONNECTIONS": "0"}, [], "REVERB_APP_MAX_CONNECTIONS"),
    ({"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "everyone"}, [],
     "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM"),
    ({"REVERB_APP_KEY": "k"}, [], "REVERB_APP_ID"),
    ({"REVERB_ALLOWED_ORIGINS": " , "}, [], "REVERB_ALLOWED_ORIGINS"),
    ({"REVERB_SERVER_PATH": "ws"}, [], "REVERB_SERVER_PATH"),
    ({}, ["--apps", "/nonexistent/apps.json"], "/nonexistent/apps.json"),
])
def test_bad_configuration_stops_with_one_line_naming_the_setting(env, args, setting):
    _, proc = start_process(bare_env(**env), *args)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], stderr


@pytest.mark.parametrize("debug", [True, False])
def test_debug_logs_every_frame_and_default_is_quiet(debug):
    env = bare_env(REVERB_APP_ID="1", REVERB_APP_KEY="k", REVERB_APP_SECRET="s")
    port, proc = start_process(env, *(["--debug"] if debug else []))
    try:
        wait_for_http(f"http://{HOST}:{port}/up", proc=proc)
        socket = PusherSocket(f"ws://{HOST}:{port}/app/k", key="k", secret="s")
        listener = PusherSocket(f"ws://{HOST}:{port}/app/k", key="k", secret="s")
        listener.joined("private-log")
        socket.joined("private-log")
        socket.send({"event": "pusher:ping"})
        assert socket.recv()["event"] == "pusher:pong"
        socket.send({"event": "client-hello", "channel": "private-log", "data": {}})
        assert listener.recv()["event"] == "client-hello"
        socket.close()
        listener.close()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    frame_lines = [line for line in stderr.splitlines() if "pusher:" in line or "client-" in line]
    if debug:
        assert any("< " in line and "pusher:ping" in line for line in frame_lines)
        assert any("> " in line and "pusher:pong" in line for line in frame_lines)
        assert any("> private-log (2 subscribers, except " in line and "client-hello" in line
                   for line in frame_lines)
    else:
        assert frame_lines == []
        assert len(stderr.splitlines()) <= 3, stderr


def test_console_script_starts_the_same_server():
    script = os.path.join(os.path.dirname(sys.executable), "broadcaster")
    port = free_port()
    proc = subprocess.Popen([script, "start", "--host", HOST, "--port", str(port)],
                            env=bare_env(REVERB_APP_ID="1", REVERB_APP_KEY="k",
                                         REVERB_APP_SECRET="s"),
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://{HOST}:{port}/up", proc=proc)
        socket = PusherSocket(f"ws://{HOST}:{port}/app/k", key="k", secret="s")
        assert socket.greeting["event"] == "pusher:connection_established"
        socket.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_port_in_use_stops_start_up_with_one_line():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "broadcaster", "start", "--host", HOST, "--port", str(port)]
        result = subprocess.run(cmd, env=bare_env(), capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert f"cannot listen on {HOST}:{port}" in result.stderr
