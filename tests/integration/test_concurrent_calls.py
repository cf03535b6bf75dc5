"""Two calls at once through the whole system, the LLM decoding both answers together
(``llm.parallel`` = 2): both callers get every answer, and one caller cutting in leaves the other's
answers whole. The callers react to what they hear (they speak once the agent's answer is over, or
cut in once they hear it), so the tests hold whatever the test model says and however slow the
machine is."""

from __future__ import annotations

import asyncio

import pytest

from voxbus.bus.connection import Bus
from voxbus.engines.tts import PiperEngine
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.media.file_call import FileCall, FileCallResult
from voxbus.schemas.events import BargeIn, LlmCancelled, LlmDone, PlayoutDone, TtsDone, TurnMetrics

from .helpers import cue_at_turn_end, wait_all_serving

pytestmark = pytest.mark.integration
ANSWER_TOKENS = 40


@pytest.fixture(autouse=True)
def batched_answers_of_known_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer exactly ANSWER_TOKENS long (about ten seconds of speech), whatever the test
    model would say, decoded in one batch for both calls (worker processes read the environment)."""
    monkeypatch.setenv("VOXBUS_LLM__PARALLEL", "2")
    monkeypatch.setenv("VOXBUS_AGENT__MAX_TOKENS", str(ANSWER_TOKENS))
    monkeypatch.setenv("VOXBUS_LLM__MIN_TOKENS", str(ANSWER_TOKENS))


async def both(client: Bus, piper: PiperEngine, dialogues: list[Dialogue]) -> list[FileCallResult]:
    """The calls at once; a caller's ``after_cue`` line waits for the end of a turn (its answer
    played to the end, told by ``TurnMetrics``): on a loaded machine an answer can pause longer
    than the quiet after which ``after_reply`` takes it as over."""
    await wait_all_serving(client)
    players = [DialoguePlayer(d, [render_line(line, piper) for line in d.lines]) for d in dialogues]
    calls = [FileCall(client, player, max_s=240, on_event=cue_at_turn_end(player)) for player in players]
    return await asyncio.gather(*(call.run() for call in calls))


def answered(result: FileCallResult) -> list[TurnMetrics]:
    return [e for e in result.events if isinstance(e, TurnMetrics)]


async def test_two_calls_at_once_get_every_answer_and_one_cutting_in_leaves_the_other_whole(
    client: Bus, piper: PiperEngine
) -> None:
    cutting_in = Dialogue(
        lines=[
            DialogueLine(text="Please tell me a long story about a knight."),
            DialogueLine(text="Stop. What time is it?", when="during_reply", gap_s=1.0, role="interrupt"),
        ]
    )
    listening = Dialogue(
        lines=[
            DialogueLine(text="What is the capital of France?"),
            DialogueLine(text="What do cows drink?", when="after_cue"),
        ]
    )
    interrupter, listener = await both(client, piper, [cutting_in, listening])

    # the caller who cut in: the answer stopped where they spoke, and what they said was answered
    barge = [e for e in interrupter.events if isinstance(e, BargeIn) and e.decision == "interrupt"]
    assert len(barge) == 1
    cut = [e for e in interrupter.events if isinstance(e, PlayoutDone) and e.gen == barge[0].gen]
    assert len(cut) == 1 and not cut[0].complete
    turns = answered(interrupter)
    assert len(turns) == 2 and turns[0].interrupted and turns[1].agent_text.strip()

    # the other caller: every answer, each generated to its end, synthesised and played whole
    turns = answered(listener)
    assert [m.turn for m in turns] == [1, 2]
    assert not [e for e in listener.events if isinstance(e, BargeIn) and e.decision == "interrupt"]
    for metrics in turns:
        assert metrics.agent_text.strip() and metrics.first_audio_ms and not metrics.interrupted
        assert not [e for e in listener.events if isinstance(e, LlmCancelled) and e.gen == metrics.gen]
        (done,) = [e for e in listener.events if isinstance(e, LlmDone) and e.gen == metrics.gen]
        assert done.finish_reason == "stop" and done.text.strip()
        synthesised = [e for e in listener.events if isinstance(e, TtsDone) and e.gen == metrics.gen]
        assert synthesised and not any(e.cancelled for e in synthesised)
        played = [e for e in listener.events if isinstance(e, PlayoutDone) and e.gen == metrics.gen]
        assert len(played) == 1 and played[0].complete
