"""History channels in the pure core: the ring against a model (Hypothesis), serials assigned
on one process, and a resume driven by hand (answers come later, as from Redis): live frames
that arrive while it is read wait until the replay is out."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from broadcaster.config import HistoryRule
from broadcaster.protocol.fanout import deliver
from broadcaster.protocol.history import Ring, Window, with_position
from broadcaster.protocol.publication import Publication
from broadcaster.protocol.requests import ReadHistory
from broadcaster.protocol.session import Session
from shared.payloads import encode_message
from tests.broadcaster.recording import Clock, RecordingClient, app_state, open_session
from tests.pusher_socket import error

HISTORY = (HistoryRule("orders*", limit=3, ttl=60),)


def test_a_frame_carries_its_position_after_the_usual_fields():
    message = encode_message("e", '{"a":1}', channel="orders", user_id="u1")
    assert with_position(message, 7, "ab12") == (
        b'{"event":"e","channel":"orders","data":"{\\"a\\":1}","user_id":"u1",'
        b'"serial":7,"epoch":"ab12"}')


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 6), ttl=st.integers(1, 20),
       steps=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 12)), max_size=25),
       after=st.integers(0, 30))
def test_the_ring_keeps_what_the_model_keeps_and_resumes_only_without_a_gap(limit, ttl, steps,
                                                                            after):
    """Model: every event published (serial, time); kept = the last ``limit`` younger than
    ``ttl``. A resume after N works iff N is the latest, or N+1 is still kept."""
    ring = Ring(HistoryRule("x", limit, ttl))
    published: list[tuple[int, float]] = []
    now = 0.0
    for pause, count in steps:
        now += pause
        for _ in range(count):
            ring.append(b'{"event":"e"}', now)
            published.append((len(published) + 1, now))
    window = ring.window(after, 1_000, now)
    kept = [serial for serial, at in published[-limit:] if at + ttl > now]
    latest = len(published)
    assert [serial for serial, _ in window.frames] == [s for s in kept if s > after]
    assert (window.latest, window.oldest) == (latest, kept[0] if kept else 0)
    resumable = after == latest or (after < latest and bool(kept) and kept[0] <= after + 1)
    assert (window.resume_error(after, window.epoch) is None) == resumable
    assert window.resume_error(after, "another-epoch") is not None or not window.epoch


def test_one_process_numbers_history_channels_only_and_never_member_events():
    app = app_state(history=HISTORY)
    session, client = open_session(app, "1.1")
    for name in ("orders-1", "news"):
        session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": name}}))
    success, plain = client.take()
    assert (success["serial"], success["epoch"]) == (0, "")
    assert "serial" not in plain
    for n in range(2):
        deliver(app, Publication(app.id, ("orders-1", "news"), f"e{n}", "{}"))
    deliver(app, Publication(app.id, ("orders-1",), "pusher_internal:member_added", "{}"))
    got = client.take()
    assert [(m["channel"], m.get("serial")) for m in got] == [
        ("orders-1", 1), ("news", None), ("orders-1", 2), ("news", None), ("orders-1", None)]
    assert got[0]["epoch"] == got[2]["epoch"] == app.rings["orders-1"].epoch


def resume(session: Session, channel: str, after: int, epoch: str | None = None) -> None:
    data = {"channel": channel, "after": after, **({"epoch": epoch} if epoch else {})}
    session.handle_text(json.dumps({"event": "resound:resume", "data": data}))


def test_live_frames_wait_for_the_replay_when_the_history_comes_later():
    app = app_state(history=HISTORY)
    client = RecordingClient("1.1")
    asked: list = []
    session = Session(app, client, Clock(), lambda publication: None, asked.append)
    session.open()
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "orders"}}))
    session.answer(asked[0], Window((), 2, 1, "ep"))
    client.take()
    resume(session, "orders", 0, "ep")
    request = asked[-1]
    assert request == ReadHistory(app.id, "orders", 0, 3)
    kept = [encode_message(f"e{n}", "{}", channel="orders") for n in (1, 2)]
    deliver(app, Publication(app.id, ("orders",), "e3", "{}"), (3, "ep"))  # while it is read
    assert client.take() == []
    session.answer(request, Window(tuple((n, with_position(m, n, "ep"))
                                         for n, m in zip((1, 2), kept, strict=True)), 2, 1, "ep"))
    got = client.take()
    assert [(m["event"], m.get("serial")) for m in got] == [
        ("e1", 1), ("e2", 2), ("resound:resume_succeeded", None), ("e3", 3)]
    assert json.loads(got[2]["data"]) == {"latest": 2, "epoch": "ep"}
    deliver(app, Publication(app.id, ("orders",), "e4", "{}"), (4, "ep"))
    assert [m["serial"] for m in client.take()] == [4]  # the socket is back among subscribers


def test_a_resume_is_refused_off_the_channel_failed_without_history_and_rate_limited():
    app = app_state(history=HISTORY)
    session, client = open_session(app, "1.1")
    resume(session, "orders", 0)
    assert error(client.take()[0])[0] == 4009
    session.handle_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
    client.take()
    resume(session, "news", 0)
    failed, = client.take()
    assert failed["event"] == "resound:resume_failed"
    assert json.loads(failed["data"])["reason"] == "news keeps no history"
    for _ in range(12):
        resume(session, "news", 0)
    codes = [error(m)[0] for m in client.take() if m["event"] == "pusher:error"]
    assert codes == [4301] * len(codes) and codes
