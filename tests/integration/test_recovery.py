"""Supervision with real processes: a killed LLM worker, a killed call actor (agent process) and a
killed nats-server."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.streams import call_state_bucket
from voxbus.engines.tts import PiperEngine
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.schemas.events import (
    CallResumed,
    Event,
    LlmRetried,
    TurnMetrics,
    WorkerRestarted,
)
from voxbus.schemas.messages import CallState, LlmChunk
from voxbus.supervisors.system import System

from .helpers import (
    TWO_QUESTIONS,
    asked_again_after,
    of_call,
    pid_of,
    shares_most_words,
    stream_events,
    wait_all_serving,
)

pytestmark = pytest.mark.integration

ONE_QUESTION = CallerScript(
    lines=[
        Line(text="Tell me a long story about a brave little dog.", pause_before_s=2.5),
    ],
    tail_s=0.5,
)


@pytest.fixture
def answer_tokens(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.setenv("VOXBUS_AGENT__MAX_TOKENS", str(request.param))


@pytest.mark.parametrize("answer_tokens", [60], indirect=True)
async def test_killed_llm_worker_is_restarted_and_the_turn_completes(
    answer_tokens: None, client: Bus, caller
) -> None:  # type: ignore[no-untyped-def]
    wav, _ = caller(ONE_QUESTION)
    pid = await pid_of(client, "llm", "llm-1")
    call = FileCall(client, WavSource(wav))
    killed = asyncio.Event()

    async def kill_mid_reply(chunk: LlmChunk, _msg: Msg) -> None:
        if chunk.peek_of is not None:
            return  # a warm-up's peek while the caller speaks: the reply has not begun
        if not killed.is_set():
            killed.set()
            os.kill(pid, signal.SIGKILL)

    await client.subscribe(subjects.llm_chunks(call.call_id), LlmChunk, kill_mid_reply)
    result = await call.run()

    assert killed.is_set()
    metrics = [e for e in result.events if isinstance(e, TurnMetrics)]
    assert [m.turn for m in metrics] == [1], "the turn completes despite the kill"
    assert not metrics[0].interrupted and metrics[0].first_audio_ms
    assert metrics[0].retries >= 1 and metrics[0].agent_text.strip()
    assert any(isinstance(e, LlmRetried) for e in result.events)
    assert await pid_of(client, "llm", "llm-1") != pid, "a new LLM process serves"

    assert client.js is not None
    events = await stream_events(client.js)  # raises if a sequence number is missing
    seqs = [s for s, _ in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    restarts = [e for _, e in events if isinstance(e, WorkerRestarted)]
    assert any(r.worker_id == "llm-1" and "SIGKILL" in r.reason for r in restarts)
    # every event the file call saw live is in the stream too: none lost
    live = {(e.type, e.ts) for e in result.events}
    stored = {(e.type, e.ts) for _, e in of_call(events, call.call_id)}
    assert live <= stored


@pytest.mark.parametrize("answer_tokens", [25], indirect=True)
async def test_killed_call_actor_resumes_the_conversation(
    answer_tokens: None, client: Bus, piper: PiperEngine
) -> None:
    pid = await pid_of(client, "agent", "agent-1")
    resumed_live = asyncio.Event()

    async def resumed_watch(event: Event, _msg: Msg) -> None:
        if isinstance(event, CallResumed):
            resumed_live.set()

    await client.subscribe(subjects.ALL_CALL_EVENTS, None, resumed_watch)
    call, result = await asked_again_after(
        client,
        piper,
        lambda: os.kill(pid, signal.SIGKILL),
        lambda: asyncio.wait_for(resumed_live.wait(), 120),
    )

    resumed = [e for e in result.events if isinstance(e, CallResumed)]
    assert resumed and resumed[0].history_len >= 3  # greeting, question 1, answer 1
    metrics = [e for e in result.events if isinstance(e, TurnMetrics)]
    assert [m.turn for m in metrics] == [1, 2]
    assert client.js is not None
    kv = await call_state_bucket(client.js)
    state = await ended_state(kv, call.call_id)
    users = [m.content for m in state.history if m.role == "user"]
    asked = [line.text for line in TWO_QUESTIONS.lines]
    assert len(users) == 2 and all(map(shares_most_words, users, asked)), users
    assert state.ended, "the resumed actor saved the end of the call"


async def ended_state(kv: KeyValue, call_id: str, timeout_s: float = 15.0) -> CallState:
    """The call's saved state once its actor has saved the call's end (it does so when the
    call.ended event reaches it, after the file call has returned), or the last one after
    ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        state = CallState.model_validate_json((await kv.get(call_id)).value or b"")
        if state.ended or asyncio.get_running_loop().time() > deadline:
            return state
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("answer_tokens", [25], indirect=True)
async def test_killed_nats_server_is_restarted_and_the_call_goes_on(
    answer_tokens: None, system: System, client: Bus, piper: PiperEngine
) -> None:
    """kill -9 of the embedded nats-server mid-call: the supervisor starts it again on the same
    port and store, every process reconnects, the caller's next question is answered, and the
    event stream has every event of the call, with no gap."""
    await wait_all_serving(client)
    assert system.nats is not None and system.nats.proc is not None
    server_pid = system.nats.proc.pid
    call, result = await asked_again_after(
        client,
        piper,
        lambda: os.kill(server_pid, signal.SIGKILL),
        lambda: wait_all_serving(client, timeout_s=120),
    )

    assert system.nats_restarts == 1
    assert system.nats.proc.pid != server_pid
    metrics = [e for e in result.events if isinstance(e, TurnMetrics)]
    assert [m.turn for m in metrics] == [1, 2], "the question after the outage is answered"
    assert client.js is not None
    events = await stream_events(client.js)  # raises if a sequence number is missing
    restarted = [e for _, e in events if isinstance(e, WorkerRestarted) and e.role == "nats"]
    assert restarted and "SIGKILL" in restarted[0].reason
    stored = {(e.type, e.ts) for _, e in of_call(events, call.call_id)}
    assert {(e.type, e.ts) for e in result.events} <= stored  # none lost
