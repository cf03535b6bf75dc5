"""The warm transfer, without a bus: the holding phrase, the summary before the SIP transfer, the
caller's words when the LLM is too slow, and the call back with the agent when nobody answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_tool_flow import FakeOut, FakeStore
from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.conversation import Conversation
from voxbus.actors.call.handoff import SUMMARY_GEN, SUMMARY_INSTRUCTION, Handoff
from voxbus.actors.call.operator import OperatorDesk
from voxbus.clock import ManualClock
from voxbus.config import AgentSettings
from voxbus.schemas.events import PlayoutDone, TransferResult, TransferReturned, TransferSummary
from voxbus.schemas.messages import CallControl, CallState, ChatMessage, LlmChunk

TARGET = "sip:desk@127.0.0.1:5099"


class HandoffOut(FakeOut):
    """Also records what a transfer sends, in one ordered log."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []
        self.asked: list[tuple[int, list[ChatMessage]]] = []
        self.cancelled: list[int] = []

    def emit(self, event: Any) -> None:
        super().emit(event)
        self.log.append(event)

    async def send(self, command: Any) -> bool:
        self.log.append(command)
        return True

    async def ask_llm(self, gen: int, turn: int, messages: list[ChatMessage], max_tokens: int) -> None:
        self.asked.append((gen, messages))

    async def cancel_gen(self, gen: int, reason: str) -> None:
        self.cancelled.append(gen)


def setup(**overrides: Any) -> tuple[Handoff, HandoffOut, AgentSide, ManualClock]:
    settings = AgentSettings(transfer_target=TARGET, **overrides)
    state = CallState(call_id="c", owner="agent-1", caller="+15550100", called="200")
    conversation = Conversation(state, settings)
    conversation.open_turn("I need to move my appointment, but the web page won't let me")
    conversation.add_answer("I can help with that. Which day suits you?")
    clock = ManualClock()
    out = HandoffOut()
    agent = AgentSide(conversation, FakeStore(), out, settings, clock)  # type: ignore[arg-type]
    desk = OperatorDesk(agent, out, settings)  # type: ignore[arg-type]
    handoff = Handoff(conversation, desk, out, settings, clock)  # type: ignore[arg-type]
    desk.transfer = agent.transfer = handoff.start
    return handoff, out, agent, clock


def transfers(out: HandoffOut) -> list[CallControl]:
    return [m for m in out.log if isinstance(m, CallControl) and m.action == "transfer"]


async def played(agent: AgentSide, handoff: Handoff) -> None:
    """The phrase being spoken has played out: the desk may speak the next one."""
    agent.current = None
    await handoff.desk.say_next()


async def test_the_summary_is_published_before_the_transfer_is_sent() -> None:
    handoff, out, agent, _clock = setup()
    assert await handoff.start("dana") is None
    assert out.spoken[0][0].startswith("Please hold on")  # the caller hears the holding phrase
    gen, messages = out.asked[0]
    assert gen > SUMMARY_GEN and handoff.owns(LlmChunk(call_id="c", gen=gen, seq=0, text=""))
    # the conversation's prompt as for an answer (its cached prefix), the instruction last
    assert messages[-1].content == SUMMARY_INSTRUCTION
    assert any("move my appointment" in m.content for m in messages[:-1])
    assert not transfers(out)  # nothing is sent before the summary
    await handoff.chunk(LlmChunk(call_id="c", gen=gen, seq=0, text="Caller wants to move"))
    await handoff.chunk(LlmChunk(call_id="c", gen=gen, seq=1, text=" an appointment.", done=True))
    summary, command = out.log[-2:]
    assert isinstance(summary, TransferSummary) and isinstance(command, CallControl)
    assert summary.summary == "Caller wants to move an appointment." and summary.source == "llm"
    assert summary.caller == "+15550100" and summary.requested_by == "dana" and summary.target == TARGET
    assert command.action == "transfer" and command.target == TARGET


async def test_a_slow_summary_gives_way_to_the_callers_own_words() -> None:
    handoff, out, _agent, clock = setup(transfer_summary_timeout_s=3.0)
    await handoff.start("agent")
    clock.advance(2.0)
    await handoff.tick()
    assert not transfers(out)
    clock.advance(1.5)
    await handoff.tick()
    summary = next(e for e in out.log if isinstance(e, TransferSummary))
    assert summary.source == "transcript" and "move my appointment" in summary.summary
    assert out.cancelled == [out.asked[0][0]] and len(transfers(out)) == 1
    # the summary's late chunks change nothing
    await handoff.chunk(LlmChunk(call_id="c", gen=out.asked[0][0], seq=0, text="late", done=True))
    assert len(transfers(out)) == 1 and sum(isinstance(e, TransferSummary) for e in out.log) == 1


@pytest.mark.parametrize("code", [486, 408, 603])
async def test_an_unanswered_transfer_comes_back_to_the_agent(code: int) -> None:
    handoff, out, agent, _clock = setup()
    await handoff.start("agent")
    gen = out.asked[0][0]
    await handoff.chunk(LlmChunk(call_id="c", gen=gen, seq=0, text="Moving a booking.", done=True))
    await handoff.result(TransferResult(call_id="c", target=TARGET, code=180, final=False))
    assert handoff.pending is not None  # ringing: not an outcome yet
    await handoff.result(TransferResult(call_id="c", target=TARGET, code=code, reason="Busy", final=True))
    returned = [e for e in out.log if isinstance(e, TransferReturned)]
    assert len(returned) == 1 and returned[0].code == code
    assert handoff.pending is None
    await played(agent, handoff)  # the holding phrase has played: the failure is said next
    assert out.spoken[-1][0].startswith("I'm sorry, none of my colleagues")
    assert "transfer to a colleague failed" in handoff.conversation.state.context
    assert await handoff.start("agent") is None  # and the agent may try again later


async def test_an_answered_transfer_ends_the_handoff_quietly() -> None:
    handoff, out, agent, _clock = setup()
    await handoff.start("agent")
    await handoff.chunk(LlmChunk(call_id="c", gen=out.asked[0][0], seq=0, text="Note.", done=True))
    await handoff.result(TransferResult(call_id="c", target=TARGET, code=200, final=True))
    await played(agent, handoff)
    assert handoff.pending is None and not any(isinstance(e, TransferReturned) for e in out.log)
    assert len(out.spoken) == 1  # only the holding phrase


async def test_no_outcome_in_time_comes_back_too() -> None:
    handoff, out, _agent, clock = setup(transfer_answer_timeout_s=30.0)
    await handoff.start("agent")
    await handoff.chunk(LlmChunk(call_id="c", gen=out.asked[0][0], seq=0, text="Note.", done=True))
    clock.advance(29.0)
    await handoff.tick()
    assert handoff.pending is not None
    clock.advance(2.0)
    await handoff.tick()
    returned = next(e for e in out.log if isinstance(e, TransferReturned))
    assert returned.code == 0 and returned.reason == "no outcome in time"


async def test_one_transfer_at_a_time_and_a_result_before_any_is_ignored() -> None:
    handoff, out, _agent, _clock = setup()
    await handoff.result(TransferResult(call_id="c", target=TARGET, code=486, final=True))
    assert not out.log  # nothing under way: nothing comes back
    await handoff.start("agent")
    assert await handoff.start("dana") == "a transfer is already under way"
    assert len(out.asked) == 1


async def test_a_blind_transfer_when_warm_transfer_is_off() -> None:
    handoff, out, _agent, _clock = setup(warm_transfer=False)
    await handoff.start("agent")
    assert len(transfers(out)) == 1 and not out.asked and not out.spoken and handoff.pending is None


async def test_the_llms_transfer_tool_goes_through_the_handoff() -> None:
    handoff, out, agent, _clock = setup()
    generation = agent._new_generation("answer")
    generation.llm.done = True
    generation.after_playout.append(CallControl(call_id="c", action="transfer", target=TARGET))
    await agent.playout_done(PlayoutDone(call_id="c", gen=generation.gen, played_ms=900, complete=True))
    assert out.asked and not transfers(out)  # a summary is asked for first
