"""The LLM worker on a real NATS server, with an engine that stands in for llama.cpp: it serves as
many generations at once as its engine decodes together, one at a time otherwise, and a request
that waited for the worker says so in ``llm.first_token``'s ``queued_s``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nats.aio.msg import Msg

from voxbus.actors.llm_worker import LlmWorker
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.streams import ensure_events_stream
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import Event, LlmFirstToken
from voxbus.schemas.messages import ChatMessage, LlmChunk, LlmRequest

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

    def warm(self, messages: list[ChatMessage], tools: Any = None, session: str = "") -> None:
        pass


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
            await until(lambda: len({c.call_id for c in chunks}) == 2, 10)
        else:  # the first has begun; the second waits for it
            await until(lambda: len(chunks) == 1, 10)
        engine.gate.set()
        await until(lambda: sum(c.done for c in chunks) == 2, 10)
        await until(lambda: len(firsts) == 2, 10)
    finally:
        engine.gate.set()
        await bus.close()
    return engine, firsts, chunks


async def test_a_batching_engine_gets_two_calls_at_once(nats_url: str) -> None:
    engine, firsts, chunks = await serve_two(nats_url, parallel=2)
    assert engine.most == 2
    assert sorted(engine.sessions) == ["call-a", "call-b"]  # each call's turns in its own sequence
    assert {c.call_id for c in chunks if c.done and c.finish_reason == "stop"} == {"call-a", "call-b"}


async def test_a_one_at_a_time_engine_serves_in_turn_and_the_wait_shows(nats_url: str) -> None:
    engine, firsts, chunks = await serve_two(nats_url, parallel=1)
    assert engine.most == 1
    first_done = next(i for i, c in enumerate(chunks) if c.done)
    assert all(c.call_id == chunks[0].call_id for c in chunks[: first_done + 1])  # in turn
    waited = {e.call_id: e.queued_s for e in firsts}
    assert waited[chunks[0].call_id] < waited[chunks[-1].call_id]
    assert waited[chunks[-1].call_id] > 0
