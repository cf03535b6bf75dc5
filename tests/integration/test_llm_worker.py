"""The LLM worker on a real NATS server, with an engine that stands in for llama.cpp: it serves as
many generations at once as its engine decodes together, one at a time otherwise, and a request
that waited for the worker says so in ``llm.first_token``'s ``queued_s``; a generation asked again
stops its first request (two streams of one generation never run side by side), and a worker with
nothing to say yet says that it is at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nats.aio.msg import Msg

from voxbus.actors.llm_worker import LlmWorker
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.streams import ensure_events_stream
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import Event, LlmCancelled, LlmFirstToken
from voxbus.schemas.messages import (
    PREWARM_CALL_ID,
    Cancel,
    ChatMessage,
    LlmChunk,
    LlmRequest,
    is_agent_prompt_session,
)

from .helpers import until

pytestmark = pytest.mark.integration


class GatedEngine:
    """Each answer is two pieces; the second waits until the test opens the gate. Counts how many
    answers were in progress at once."""

    def __init__(self, parallel: int) -> None:
        self.parallel = parallel
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.active = self.most = 0
        self.sessions: list[str] = []
        self.warmed: list[str] = []  # the session of each warm-up
        self.held_s = 0.0  # how long the test kept a queued request waiting (one at a time)

    def stream(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        continue_from: str = "",
        cancelled: Callable[[], bool] = lambda: False,
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
    ) -> Iterator[str]:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.sessions.append(session)
        try:
            yield "Sure,"
            assert self.gate.wait(30)
            yield " done."
        finally:
            with self.lock:
                self.active -= 1

    def warm(
        self,
        messages: list[ChatMessage],
        tools: Any = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        self.warmed.append(session)
        return True

    def prompt_tokens_evaluated(self, session: str) -> int:
        return len(session)  # what llm.first_token reports, one number per call here


async def serve_two(nats_url: str, parallel: int) -> tuple[GatedEngine, list[LlmFirstToken], list[LlmChunk]]:
    bus = Bus(nats_url, "llm-test", source="llm/llm-t")
    await bus.connect(attempts=3)
    assert bus.js is not None
    await ensure_events_stream(bus.js)  # events are published to it, and acknowledged
    engine = GatedEngine(parallel)
    worker = LlmWorker(bus, "llm-t", engine)  # type: ignore[arg-type]
    await worker.start()
    firsts: list[LlmFirstToken] = []
    chunks: list[LlmChunk] = []

    def said() -> list[LlmChunk]:  # text, not the chunks that say the worker is still at it
        return [c for c in chunks if c.text]

    async def on_event(event: Event, _msg: Msg) -> None:
        if isinstance(event, LlmFirstToken):
            firsts.append(event)

    async def on_chunk(chunk: LlmChunk, _msg: Msg) -> None:
        chunks.append(chunk)

    await bus.subscribe(subjects.ALL_CALL_EVENTS, None, on_event)
    await bus.subscribe(subjects.llm_chunks("*"), LlmChunk, on_chunk)
    try:
        for call in ("call-a", "call-b"):
            messages = [ChatMessage(role="user", content="hello")]
            request = LlmRequest(call_id=call, gen=1, turn=1, messages=messages)
            await bus.request(subjects.LLM_GENERATE, request, Accepted, 5)
        if parallel > 1:  # both answers have begun before either may end
            await until(lambda: len({c.call_id for c in said()}) == 2)
        else:  # the first has begun; the second waits in the queue for it
            await until(lambda: len(said()) == 1 and worker.queue.qsize() == 1)
            queued = time.perf_counter()
            # held until the first says it is still at it (a second of silence, by construction)
            await until(lambda: any(not c.text and not c.done for c in chunks))
            engine.held_s = time.perf_counter() - queued
            waiting = ({"call-a", "call-b"} - {c.call_id for c in said()}).pop()
            # the one waiting its turn says it is taken, as the one under way does
            await until(lambda: any(c.call_id == waiting and not c.text for c in chunks))
        engine.gate.set()
        await until(lambda: sum(c.done for c in chunks) == 2)
        await until(lambda: len(firsts) == 2)
    finally:
        engine.gate.set()
        await bus.close()
    return engine, firsts, chunks


async def test_a_batching_engine_gets_two_calls_at_once(nats_url: str) -> None:
    engine, firsts, chunks = await serve_two(nats_url, parallel=2)
    assert engine.most == 2
    assert {e.prompt_tokens for e in firsts} == {len("call-a")}  # as the engine counted them
    assert sorted(engine.sessions) == ["call-a", "call-b"]  # each call's turns in its own sequence
    assert {c.call_id for c in chunks if c.done and c.finish_reason == "stop"} == {"call-a", "call-b"}


async def test_a_one_at_a_time_engine_serves_in_turn_and_the_wait_shows(nats_url: str) -> None:
    engine, firsts, chunks = await serve_two(nats_url, parallel=1)
    assert engine.most == 1
    answered = [c for c in chunks if c.text or c.done]  # not the chunks that only say "taken"
    first_done = next(i for i, c in enumerate(answered) if c.done)
    assert all(c.call_id == answered[0].call_id for c in answered[: first_done + 1])  # in turn
    waited = {e.call_id: e.queued_s for e in firsts}
    # the second arrived before the test began holding it, and began after the first ended
    assert engine.held_s > 0 and waited[answered[-1].call_id] > engine.held_s - 0.001


class PromptEngine:
    """An engine "evaluating a long prompt" (saying nothing, honouring ``cancelled``, or for a
    warm-up ``stop``) until the test releases it, then answering in one piece. Records how each
    request ended."""

    parallel = 1

    def __init__(self) -> None:
        self.release = threading.Event()
        self.began: list[str] = []  # the continue_from of each request it began
        self.ended: list[str] = []  # "stopped" or "answered", in order

    def stream(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        continue_from: str = "",
        cancelled: Callable[[], bool] = lambda: False,
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
    ) -> Iterator[str]:
        self.began.append(continue_from)
        while not self.release.wait(0.01):
            if cancelled():
                self.ended.append("stopped")
                return
        self.ended.append("answered")
        yield "Sure."

    def warm(
        self,
        messages: list[ChatMessage],
        tools: Any = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        self.began.append("warm-up")
        while not self.release.wait(0.01):
            if stop():
                self.ended.append("warm-up gave way")
                return False
        self.ended.append("warmed")
        return True


async def serve_prompt_engine(
    nats_url: str,
) -> tuple[Bus, PromptEngine, list[LlmChunk], list[Event]]:
    bus = Bus(nats_url, "llm-test", source="llm/llm-p")
    await bus.connect(attempts=3)
    assert bus.js is not None
    await ensure_events_stream(bus.js)
    engine = PromptEngine()
    await LlmWorker(bus, "llm-p", engine).start()  # type: ignore[arg-type]
    chunks: list[LlmChunk] = []
    events: list[Event] = []

    async def on_chunk(chunk: LlmChunk, _msg: Msg) -> None:
        chunks.append(chunk)

    async def on_event(event: Event, _msg: Msg) -> None:
        events.append(event)

    await bus.subscribe(subjects.llm_chunks("*"), LlmChunk, on_chunk)
    await bus.subscribe(subjects.ALL_CALL_EVENTS, None, on_event)
    return bus, engine, chunks, events


def ask(request_no: int, continue_from: str = "") -> LlmRequest:
    messages = [ChatMessage(role="user", content="hello")]
    return LlmRequest(
        call_id="call-p", gen=3, turn=1, messages=messages, request_no=request_no, continue_from=continue_from
    )


async def test_a_worker_with_nothing_to_say_yet_says_it_is_at_it(nats_url: str) -> None:
    bus, engine, chunks, _ = await serve_prompt_engine(nats_url)
    try:
        await bus.request(subjects.LLM_GENERATE, ask(1), Accepted, 5)
        await until(lambda: bool(chunks))  # before any text: the engine is still held
        assert chunks[0].text == "" and not chunks[0].done and chunks[0].request_no == 1
        engine.release.set()
        await until(lambda: any(c.done for c in chunks))
    finally:
        engine.release.set()
        await bus.close()
    assert "".join(c.text for c in chunks) == "Sure." and chunks[-1].finish_reason == "stop"


async def test_a_generation_asked_again_stops_its_first_request(nats_url: str) -> None:
    bus, engine, chunks, events = await serve_prompt_engine(nats_url)
    try:
        await bus.request(subjects.LLM_GENERATE, ask(1), Accepted, 5)
        await until(lambda: engine.began == [""])
        # the call actor gave up on it (a slow machine, the worker busy) and asks again
        await bus.request(subjects.LLM_GENERATE, ask(2, continue_from="Well,"), Accepted, 5)
        await until(lambda: engine.began == ["", "Well,"])  # one worker, one at a time
        engine.release.set()
        await until(lambda: any(c.done for c in chunks))
        await until(lambda: any(isinstance(e, LlmCancelled) for e in events))
    finally:
        engine.release.set()
        await bus.close()
    assert engine.ended == ["stopped", "answered"]
    assert {c.request_no for c in chunks if c.text or c.done} == {2}
    cancelled = [e for e in events if isinstance(e, LlmCancelled)]
    assert [(e.gen, e.reason) for e in cancelled] == [(3, "superseded by request 2")]


async def test_a_generation_asked_of_another_worker_stops_at_the_first(nats_url: str) -> None:
    """The call actor asked again and the queue group gave the new request to another worker: the
    announcement on the cancel subject stops the first one (it must not decode for nobody)."""
    bus, engine, chunks, events = await serve_prompt_engine(nats_url)
    try:
        await bus.request(subjects.LLM_GENERATE, ask(1), Accepted, 5)
        await until(lambda: engine.began == [""])
        superseded = Cancel(call_id="call-p", gen=3, reason="asked again", requests_below=2)
        await bus.publish(subjects.cancel("call-p"), superseded)
        await until(lambda: engine.ended == ["stopped"])
        await until(lambda: any(isinstance(e, LlmCancelled) for e in events))
        # request 2, wherever it goes, is not cancelled by the announcement: here it is served
        await bus.request(subjects.LLM_GENERATE, ask(2, continue_from="Well,"), Accepted, 5)
        engine.release.set()
        await until(lambda: any(c.done for c in chunks))
    finally:
        engine.release.set()
        await bus.close()
    assert engine.ended == ["stopped", "answered"]
    assert not [c for c in chunks if c.request_no == 1 and (c.text or c.done)]
    cancelled = [e for e in events if isinstance(e, LlmCancelled)]
    assert [(e.gen, e.reason) for e in cancelled] == [(3, "superseded by request 2")]


async def test_a_warm_up_gives_way_to_a_call(nats_url: str) -> None:
    """An agent's prompt being warmed for later calls (seconds of work on one context) stops as
    soon as a call's request waits, which is then served."""
    bus, engine, chunks, _ = await serve_prompt_engine(nats_url)
    opening = [ChatMessage(role="system", content="You are a clinic's receptionist.")]
    try:
        await bus.publish(
            subjects.LLM_GENERATE,
            LlmRequest(call_id=PREWARM_CALL_ID, gen=0, turn=0, messages=opening, warm_only=True),
        )
        await until(lambda: engine.began == ["warm-up"])
        await bus.request(subjects.LLM_GENERATE, ask(1), Accepted, 5)
        await until(lambda: engine.began == ["warm-up", ""])
        engine.release.set()
        await until(lambda: any(c.done for c in chunks))
    finally:
        engine.release.set()
        await bus.close()
    assert engine.ended == ["warm-up gave way", "answered"]


async def test_each_agents_prompt_is_warmed_on_a_session_of_its_own(nats_url: str) -> None:
    """Every agent's prompt comes under PREWARM_CALL_ID; on one engine session the second agent's
    prompt replaced the first's, whose first call then evaluated it all again."""
    bus = Bus(nats_url, "llm-test", source="llm/llm-t")
    await bus.connect(attempts=3)
    engine = GatedEngine(parallel=2)
    worker = LlmWorker(bus, "llm-t", engine)  # type: ignore[arg-type]
    await worker.start()
    try:
        agents = ("You are the clinic's receptionist.", "You take orders for a pizzeria.")
        for n, instructions in enumerate(agents, start=1):
            system = [ChatMessage(role="system", content=instructions)]
            warm = LlmRequest(call_id=PREWARM_CALL_ID, gen=0, turn=0, messages=system, warm_only=True)
            await bus.publish(subjects.LLM_GENERATE, warm)
            await until(lambda n=n: len(engine.warmed) == n)
    finally:
        await bus.close()
    assert len(set(engine.warmed)) == 2
    assert all(is_agent_prompt_session(s) for s in engine.warmed)
