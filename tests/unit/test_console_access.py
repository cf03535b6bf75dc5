"""Who may use the console, and the live view of calls it keeps."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from voxbus.console.auth import ConsoleAuth, LoginThrottle, Operator, hash_password, new_token
from voxbus.console.live import LiveCalls
from voxbus.console.settings import ConsoleSettings, ConsoleToken, ConsoleUser
from voxbus.schemas.events import CallEnded, CallStarted, StateChanged, SttFinal
from voxbus.schemas.messages import Heartbeat, OperatorCommand

USERS = {
    "ann": ConsoleUser(password_hash=hash_password("ann's secret"), role="supervisor"),
    "vic": ConsoleUser(password_hash=hash_password("vic's secret"), role="viewer"),
}


def test_a_password_logs_in_its_user_and_nothing_else() -> None:
    auth = ConsoleAuth(USERS, "k" * 64, session_hours=1)
    assert auth.log_in("ann", "ann's secret") == Operator(name="ann", role="supervisor")
    assert auth.log_in("ann", "vic's secret") is None
    assert auth.log_in("nobody", "ann's secret") is None
    vic = auth.log_in("vic", "vic's secret")
    assert vic is not None and not vic.may_act


def test_a_forged_or_foreign_session_is_nobody() -> None:
    auth = ConsoleAuth(USERS, "k" * 64, session_hours=1)
    cookie = auth.session(Operator(name="vic", role="viewer"))
    assert auth.operator(cookie) == Operator(name="vic", role="viewer")
    assert auth.operator(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert ConsoleAuth(USERS, "other key" * 8, 1).operator(cookie) is None  # signed by another server
    assert ConsoleAuth({"ann": USERS["ann"]}, "k" * 64, 1).operator(cookie) is None  # vic was removed
    assert auth.operator("") is None and auth.operator("not a session") is None


def test_an_api_token_is_its_program_and_nothing_else() -> None:
    token, digest = new_token()
    assert digest not in token and len(token) >= 40
    tokens = {"wallboard": ConsoleToken(token_sha256=digest)}
    auth = ConsoleAuth(USERS, "k" * 64, 1, tokens)
    assert auth.bearer(f"Bearer {token}") == Operator(name="token:wallboard", role="viewer")
    assert auth.bearer(f"bearer {token}") is not None  # the scheme is case-insensitive (RFC 7235)
    other, _ = new_token()
    for header in (f"Bearer {other}", f"Basic {token}", "Bearer ", None, token, f"Bearer {digest}"):
        assert auth.bearer(header) is None, header
    with pytest.raises(ValidationError, match="token_sha256"):
        ConsoleSettings(tokens={"crm": {"token_sha256": token}})  # type: ignore[dict-item]


def test_wrong_passwords_from_one_address_are_throttled() -> None:
    throttle = LoginThrottle(attempts=3, window_s=60)
    for t in range(3):
        assert not throttle.blocked("10.0.0.9", now=100.0 + t)
        throttle.failed("10.0.0.9", now=100.0 + t)
    assert throttle.blocked("10.0.0.9", now=103.0) and not throttle.blocked("10.0.0.8", now=103.0)
    assert not throttle.blocked("10.0.0.9", now=161.0)  # the window passed
    throttle.failed("10.0.0.8", now=170.0)
    throttle.succeeded("10.0.0.8")
    assert "10.0.0.8" not in throttle.failures


def test_console_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ValidationError, match="password_hash"):
        ConsoleSettings(users={"ann": {"password_hash": "secret in clear"}})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="not a regular expression"):
        ConsoleSettings(redact=["(unclosed"])
    with pytest.raises(ValidationError, match="console name"):
        ConsoleSettings(users={"a b": USERS["ann"]})


def test_an_operator_command_says_what_it_needs() -> None:
    with pytest.raises(ValidationError, match="say needs a text"):
        OperatorCommand(call_id="c1", operator="ann", action="say")
    with pytest.raises(ValidationError):
        OperatorCommand(call_id="c1", operator="ann", action="dial")  # type: ignore[arg-type]
    assert OperatorCommand(call_id="c1", operator="ann", action="hangup").text == ""


async def test_live_calls_follow_events_and_heartbeats() -> None:
    live = LiveCalls(lambda text: text.replace("4111", "[redacted]"), lambda _id: None, stale_s=3.0)
    feed = live.listen()
    assert (await feed.get()) == {"kind": "calls", "calls": []}
    live.on_event(CallStarted(call_id="c1", ts=100.0, caller="+4411"), now=100.0)
    live.on_event(StateChanged(call_id="c1", state="speaking"), now=100.5)
    assert [(c.call_id, c.state) for c in live.snapshot()] == [("c1", "speaking")]
    live.on_event(SttFinal(call_id="c1", text="card 4111", compute_s=0.1, start_ms=0, end_ms=1), now=101.0)
    messages = [feed.get_nowait() for _ in range(feed.qsize())]
    said = [m["event"] for m in messages if m["kind"] == "event" and m["event"]["type"] == "stt.final"]
    assert said[0]["text"] == "card [redacted]"
    # a call the console never saw start, reported by an agent, appears; silence makes it go
    live.on_heartbeat(Heartbeat(role="agent", worker_id="agent-1", pid=1, sessions=["c1", "c2"]), now=102.0)
    assert {c.call_id for c in live.snapshot()} == {"c1", "c2"}
    live.on_heartbeat(Heartbeat(role="agent", worker_id="agent-1", pid=1, sessions=["c2"]), now=104.0)
    live.sweep(now=105.5)
    assert {c.call_id for c in live.snapshot()} == {"c2"}  # c1: no agent has it for 3.5 s
    live.on_event(CallEnded(call_id="c2", duration_s=9), now=106.0)
    assert live.snapshot() == []
    live.on_heartbeat(Heartbeat(role="agent", worker_id="agent-1", pid=1, sessions=["c2"]), now=106.2)
    assert live.snapshot() == []  # still listed while its actor stops: it has ended all the same
    live.unlisten(feed)
    await asyncio.sleep(0)
