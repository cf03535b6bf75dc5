"""A call's warm-ups (its prompt evaluated ahead, e.g. from partial transcripts) run one at a time,
the newest only: older ones are wasted work on the same cores."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

from voxbus.actors.llm_worker import LlmWorker
from voxbus.schemas.messages import PREWARM_CALL_ID, ChatMessage, LlmRequest


class HeldEngine:
    """Stands in for the LLM: records each warm-up's last words; the first one waits until let go."""

    parallel = 4

    def __init__(self) -> None:
        self.warmed: list[str] = []
        self.first_started, self.let_go = threading.Event(), threading.Event()

    def warm(self, messages: list[ChatMessage], tools: Any, session: str, real_work_waits: Any) -> bool:
        self.warmed.append(messages[-1].content)
        if len(self.warmed) == 1:
            self.first_started.set()
            self.let_go.wait(10)
        return True


def warm_up(call: str, words: str) -> LlmRequest:
    return LlmRequest(
        call_id=call, gen=1, turn=1, messages=[ChatMessage(role="user", content=words)], warm_only=True
    )


async def warmed(*batches: list[LlmRequest]) -> list[str]:
    """Send each batch of warm-ups; the first warm-up of all runs until every batch is in."""
    engine = HeldEngine()
    worker = LlmWorker(None, "llm-t", engine)  # type: ignore[arg-type]  # warm-ups send nothing
    serving = asyncio.create_task(worker._serve())
    no_reply = SimpleNamespace(reply="")
    for i, batch in enumerate(batches):
        for request in batch:
            await worker._on_request(request, no_reply)  # type: ignore[arg-type]
        if i == 0:
            await asyncio.to_thread(engine.first_started.wait, 10)
    await asyncio.sleep(0.05)  # the serving loop takes what came (nothing starts before let go)
    engine.let_go.set()
    async with asyncio.timeout(10):  # until every warm-up that was to run has run
        while worker.warming or not worker.queue.empty():
            await asyncio.sleep(0.01)
    serving.cancel()
    worker.pool.shutdown(wait=True)
    return engine.warmed


def test_warm_ups_arriving_while_one_runs_are_coalesced_into_the_newest() -> None:
    first = [warm_up("c1", "I'd like")]
    later = [warm_up("c1", "I'd like to move"), warm_up("c1", "I'd like to move my appointment")]
    assert asyncio.run(warmed(first, later)) == ["I'd like", "I'd like to move my appointment"]


def test_another_calls_warm_up_is_not_held_back() -> None:
    engine_order = asyncio.run(warmed([warm_up("c1", "one")], [warm_up("c2", "two")]))
    assert engine_order == ["one", "two"]  # "two" ran while "one" was still held


def test_a_finished_calls_prompt_is_not_kept() -> None:
    async def left() -> dict[str, LlmRequest]:
        worker = LlmWorker(None, "llm-t", HeldEngine())  # type: ignore[arg-type]
        request = warm_up("c1", "words")
        await worker._on_request(request, SimpleNamespace(reply=""))  # type: ignore[arg-type]
        worker._warm_now(request)
        worker._warm_ended(request)
        return worker.warm_newest

    assert asyncio.run(left()) == {}


def test_two_agents_prompts_are_both_warmed() -> None:
    """Every agent's prompt is sent under the one PREWARM_CALL_ID: one does not replace another."""

    def agents_prompt(text: str) -> LlmRequest:
        message = ChatMessage(role="system", content=text)
        return LlmRequest(call_id=PREWARM_CALL_ID, gen=0, turn=0, messages=[message], warm_only=True)

    first = [agent_warm := agents_prompt("You are the clinic's agent.")]
    later = [agents_prompt("You are the pizzeria's agent."), agents_prompt("You are the bank's agent.")]
    order = asyncio.run(warmed(first, later))
    assert agent_warm.messages[0].content == order[0]
    assert sorted(order[1:]) == ["You are the bank's agent.", "You are the pizzeria's agent."]
