"""Set words (the greeting, an operator's sentence) are said whole: a caller's turn that ends before
they have played waits for them, instead of cutting them unheard (an operator types a sentence
while whisper is still writing the caller's last words)."""

from __future__ import annotations

from tests.unit.test_tool_flow import FakeOut, FakeStore
from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.barge_in import Interrupt
from voxbus.actors.call.conversation import Conversation
from voxbus.actors.call.generation import Generation
from voxbus.actors.call.turn_taking import EndTurn
from voxbus.clock import ManualClock
from voxbus.config import AgentSettings
from voxbus.schemas.events import BargeIn, PlayoutDone, SttFinal
from voxbus.schemas.messages import CallState

SENTENCE = "This is Ann from the front desk, I will stay on the line."


class CancelLog(FakeOut):
    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[tuple[int, str]] = []

    async def cancel(self, generation, reason: str) -> None:  # type: ignore[no-untyped-def]
        self.cancelled.append((generation.gen, reason))


def agent_side() -> tuple[AgentSide, CancelLog]:
    settings = AgentSettings()
    state = CallState(call_id="c", owner="agent-1", caller="+15550100", called="200")
    out = CancelLog()
    agent = AgentSide(Conversation(state, settings), FakeStore(), out, settings, ManualClock())  # type: ignore[arg-type]
    return agent, out


async def saying() -> tuple[AgentSide, CancelLog, Generation]:
    """An agent side in the middle of saying the operator's sentence (nothing of it played yet)."""
    agent, out = agent_side()
    await agent.say(SENTENCE)
    assert agent.current is not None
    return agent, out, agent.current


def turn_ended(agent: AgentSide, text: str) -> EndTurn:
    final = SttFinal(call_id="c", text=text, start_ms=0, end_ms=900, compute_s=0.2)
    return EndTurn(final, 0.0, None, None, speculative=None, superseded=agent.current)


def users(agent: AgentSide) -> list[str]:
    return [m.content for m in agent.state.history if m.role == "user"]


async def test_a_turn_ended_before_an_operators_sentence_played_is_answered_after_it() -> None:
    agent, out, said = await saying()
    await agent.carry_out([turn_ended(agent, "I would like to move my appointment.")])
    assert agent.current is said and not out.cancelled  # the sentence is not cut
    assert not out.llm_requests and not users(agent)  # nor answered over it

    await agent.playout_done(PlayoutDone(call_id="c", gen=said.gen, played_ms=2500, complete=True))
    await agent.answer_turn_after_words()
    assert agent.current is not None and agent.current.kind == "answer"
    assert users(agent) == ["I would like to move my appointment."]
    assert out.llm_requests[-1][-1].content == "I would like to move my appointment."
    assert [m.role for m in agent.state.history][-2:] == ["assistant", "user"]  # said, then the turn


async def test_two_turns_waiting_for_set_words_are_answered_as_one() -> None:
    agent, out, said = await saying()
    await agent.carry_out([turn_ended(agent, "I would like")])
    await agent.carry_out([turn_ended(agent, "to move my appointment.")])
    await agent.playout_done(PlayoutDone(call_id="c", gen=said.gen, played_ms=2500, complete=True))
    await agent.answer_turn_after_words()
    assert users(agent) == ["I would like to move my appointment."]
    assert len(out.llm_requests) == 1


async def test_a_waiting_turn_is_answered_when_the_caller_cuts_the_words() -> None:
    agent, out, said = await saying()
    await agent.carry_out([turn_ended(agent, "Can you hear me?")])
    barge = BargeIn(call_id="c", gen=said.gen, decision="interrupt", reason="words", onset_ts=0.0)
    await agent.carry_out([Interrupt(said, barge, heard="This is An")])
    assert out.cancelled == [(said.gen, "barge-in")]
    assert agent.current is not None and agent.current.kind == "answer"
    assert users(agent) == ["Can you hear me?"]


async def test_an_answer_not_yet_heard_is_still_superseded_by_a_new_turn() -> None:
    agent, out = agent_side()
    await agent.carry_out([turn_ended(agent, "What time do you open?")])
    answer = agent.current
    assert answer is not None
    await agent.carry_out([turn_ended(agent, "On Saturdays, I mean.")])
    assert out.cancelled == [(answer.gen, "superseded by a new caller turn")]
    assert agent.turn_after_words is None and agent.current is not answer


async def test_a_waiting_turn_is_dropped_when_the_call_ends() -> None:
    agent, _out, _said = await saying()
    await agent.carry_out([turn_ended(agent, "Hello?")])
    await agent.end_call()
    await agent.answer_turn_after_words()
    assert agent.current is None and not users(agent)
