"""An answer cut by the caller changes the history the LLM evaluated: the new history is evaluated
again at once, while the caller is still saying what cut in, not when their turn ends."""

from __future__ import annotations

import asyncio

from .test_tool_flow import agent, caller_says, chunk


async def interrupted() -> tuple[list[str], list[str]]:
    side, out, _tools, _clock = agent()
    generation = await caller_says(side, "When is my appointment?")
    await side.chunk(chunk(side, "It is on Friday at nine in the morning, with Doctor Smith. "))
    warmed_before = len(out.warmed)
    await side.cancel(generation, "barge-in", heard="It is on Friday")
    assert len(out.warmed) == warmed_before + 1
    last = out.warmed[-1]
    return [m.role for m in last], [m.content or "" for m in last]


def test_a_cut_answer_is_evaluated_again_as_the_caller_heard_it() -> None:
    roles, contents = asyncio.run(interrupted())
    assert roles[-2:] == ["user", "assistant"]
    assert contents[-1].startswith("It is on Friday") and "Doctor Smith" not in contents[-1]


def test_a_speculative_answer_dropped_leaves_nothing_to_evaluate() -> None:
    async def dropped() -> int:
        side, out, _tools, _clock = agent()
        generation = await caller_says(side, "When is my appointment?")
        generation.speculative = True
        before = len(out.warmed)
        await side.cancel(generation, "the caller went on")
        return len(out.warmed) - before

    assert asyncio.run(dropped()) == 0
