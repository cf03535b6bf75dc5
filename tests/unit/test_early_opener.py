"""The early opener: the LLM's first words on the caller's words so far ("Sure,"), said the moment
the turn ends when they only acknowledge and the caller's last words went on from those words;
the LLM then continues the answer after them."""

from __future__ import annotations

from tests.unit.test_set_words import CancelLog, agent_side
from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.early_opener import (
    PEEK_TOKENS,
    EarlyOpener,
    Opening,
    acknowledgement,
    goes_on_from,
)
from voxbus.actors.call.metrics import turn_metrics
from voxbus.actors.call.tool_use import ToolUse
from voxbus.actors.call.turn_taking import EndTurn, Prefill
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import AgentSettings
from voxbus.engines.llm import may_become, peeked
from voxbus.engines.tool_calls import OPEN
from voxbus.lexicons import ENGLISH, FRENCH
from voxbus.schemas.events import SttFinal
from voxbus.schemas.messages import LlmChunk
from voxbus.tools.contract import ToolSpec
from voxbus.tools.invoke import CallContext

SO_FAR = "I need to move my appointment because my"
FINAL = "I need to move my appointment because my dog is sick."


def test_only_an_acknowledgement_opens_early() -> None:
    assert acknowledgement("Sure,", ENGLISH) == "Sure,"
    assert acknowledgement("Sure, I", ENGLISH) == "Sure,"  # the peek ran a token past it
    assert acknowledgement(" Of course.", ENGLISH) == "Of course."
    assert acknowledgement("Got it!", ENGLISH) == "Got it!"
    assert acknowledgement("Bien sûr,", FRENCH) == "Bien sûr,"
    # words that answer: the caller's last words may turn them
    for answer in ("Yes,", "No,", "I'm sorry,", "Great!", "Hello,"):
        assert acknowledgement(answer, ENGLISH) is None, answer
    # a peek that gave way after its first token (the caller said more meanwhile)
    assert acknowledgement("Sure", ENGLISH) == "Sure,"
    assert acknowledgement("Of", ENGLISH) is None
    # not an acknowledgement, or not words at all
    for other in ("Surely the", "Sure I can", "<tool_call>", "", "3,", "Sure-"):
        assert acknowledgement(other, ENGLISH) is None, other


def test_the_final_words_must_go_on_from_the_peeked_ones() -> None:
    assert goes_on_from(SO_FAR, FINAL)
    assert goes_on_from("I need to move my appoint", FINAL)  # a partial's last word, cut short
    assert goes_on_from(FINAL, FINAL)
    assert not goes_on_from("I need to", FINAL)  # too little of the turn: an opener to its start
    # a word of it written differently once whisper heard the whole turn
    assert goes_on_from("I need to move my appointments because my", FINAL)
    heard = "Hi, Mrs. Peter Wells, " + FINAL
    assert goes_on_from("Hi, Mrs. Peter, well, I need to move my appointment", heard)
    assert not goes_on_from("I have to remove the appointment because", FINAL)  # other words
    assert not goes_on_from("Yes, ha, ha.", "Yes, tap, tap, and unwinds the words.")
    assert not goes_on_from("", FINAL)


def test_a_peek_decodes_on_only_toward_an_opener() -> None:
    wanted = tuple(ENGLISH.acknowledgements)
    assert may_become("Of", wanted) and may_become("I", wanted) and may_become("You're", wanted)
    assert not may_become("Sure", wanted)  # whole already: no step more for its comma
    assert not may_become("The", wanted) and not may_become("I'm", wanted)


def test_a_peek_is_used_once_and_only_when_enabled() -> None:
    opener = EarlyOpener(ENGLISH, enabled=True)
    opener.peeked(SO_FAR, "Sure,")
    assert opener.for_turn(FINAL) == Opening("Sure,")
    assert opener.for_turn(FINAL) is None  # the next turn's words are peeked anew
    off = EarlyOpener(ENGLISH, enabled=False)
    off.peeked(SO_FAR, "Sure,")
    assert off.for_turn(FINAL) is None


def with_peek(text: str, agent: AgentSide, of: str = SO_FAR) -> None:
    agent.opener.peeked(of, text)


def ended(text: str) -> EndTurn:
    final = SttFinal(call_id="c", text=text, start_ms=0, end_ms=2900, compute_s=0.2)
    return EndTurn(final, 0.0, None, None, speculative=None, superseded=None)


async def prepared(enabled: bool = True) -> tuple[AgentSide, CancelLog]:
    agent, out = agent_side()
    agent.settings.early_opener = agent.opener.enabled = enabled
    agent.opener.lexicon = TurnSettings().lexicon("en")
    await agent.carry_out([Prefill(SO_FAR)])
    return agent, out


async def test_the_opener_is_said_at_once_and_the_llm_goes_on_after_it() -> None:
    agent, out = await prepared()
    assert out.peeks == [PEEK_TOKENS]  # the warm-up of the words so far also peeks
    assert "of course" in out.peeks_for[0]  # decoding on only toward an opener it would say
    with_peek("Sure, I", agent)
    await agent.carry_out([ended(FINAL)])
    generation = agent.current
    assert generation is not None
    assert out.spoken == [("Sure,", False)]  # before the LLM said a word of this turn
    assert out.continued_from == ["Sure,"]  # the answer goes on after it
    worker = generation.llm.worker or ""
    for seq, text in enumerate([" I can move it.", ""]):
        chunk = LlmChunk(call_id="c", gen=generation.gen, seq=seq, text=text, done=not text, worker_id=worker)
        await agent.chunk(chunk)
    assert out.spoken[1:] == [("I can move it.", False), ("", True)]
    assert agent.state.history[-1].content == "Sure, I can move it."
    assert turn_metrics("c", generation, interrupted=False).early_opener


async def test_no_opener_for_words_that_answer_or_for_other_words() -> None:
    for peek, final in [("Yes,", FINAL), ("Sure,", "I want to cancel it. Goodbye.")]:
        agent, out = await prepared()
        with_peek(peek, agent)
        await agent.carry_out([ended(final)])
        assert out.spoken == [] and out.continued_from == [""], (peek, final)
        assert agent.current is not None
        assert not turn_metrics("c", agent.current, interrupted=False).early_opener


async def test_off_no_peek_is_asked_or_used() -> None:
    agent, out = await prepared(enabled=False)
    assert out.peeks == [0] and out.peeks_for == [()]
    with_peek("Sure,", agent)
    await agent.carry_out([ended(FINAL)])
    assert out.spoken == [] and out.continued_from == [""]


async def test_the_holding_phrase_still_comes_after_an_opener() -> None:
    agent, out = await prepared()
    with_peek("Sure,", agent)
    await agent.carry_out([ended(FINAL)])
    generation = agent.current
    assert generation is not None
    generation.tools_since = agent.clock.monotonic()
    agent.clock.advance(AgentSettings().tool_hold_after_ms / 1000 + 0.1)  # type: ignore[attr-defined]
    await agent.hold_if_tool_slow()
    assert out.spoken == [("Sure,", False), (agent.settings.tool_holding_phrase, False)]


def test_a_peek_of_an_answer_that_opens_with_a_tool_call_is_the_bare_tag() -> None:
    for said in ("<tool_call>", "<tool_call>\n{", ' {"name": "move', "<tools>\n{"):
        assert peeked(said) == OPEN, said
    assert peeked("Sure, <tool_call>") == "Sure, "  # words first: those are the peek
    assert peeked("Sure, I") == "Sure, I"


def test_a_peeked_tool_call_opens_with_the_holding_phrase_where_one_is_given() -> None:
    opener = EarlyOpener(ENGLISH, enabled=True)
    opener.peeked(SO_FAR, OPEN)
    assert opener.for_turn(FINAL, "One moment.") == Opening("One moment.", holding=True)
    opener.peeked(SO_FAR, OPEN)
    assert opener.for_turn(FINAL) is None  # no served tools: nothing to hold for
    opener.peeked("I need to", OPEN)
    assert opener.for_turn(FINAL, "One moment.") is None  # a call to the start of the turn only


def serving_tools(agent: AgentSide) -> None:
    """The call's served tools, as ToolUse holds them once discovered."""
    tools = ToolUse(None, agent.out, agent.settings, CallContext(call_id="c"), lambda _done: None)  # type: ignore[arg-type]
    spec = ToolSpec(name="move_appointment", description="Move an appointment.", parameters={})
    tools.specs = {spec.name: spec}
    agent.tools = tools


async def test_a_tool_call_to_come_says_the_holding_phrase_at_once_and_only_once() -> None:
    agent, out = await prepared()
    serving_tools(agent)
    with_peek(OPEN, agent)
    await agent.carry_out([ended(FINAL)])
    generation = agent.current
    assert generation is not None
    phrase = agent.settings.tool_holding_phrase
    assert out.spoken == [(phrase, False)]  # before the LLM said a word of this turn
    assert out.continued_from == [""]  # the LLM is asked as without it: it makes the call
    generation.tools_since = agent.clock.monotonic()
    agent.clock.advance(AgentSettings().tool_hold_after_ms / 1000 + 0.1)  # type: ignore[attr-defined]
    await agent.hold_if_tool_slow()
    assert out.spoken == [(phrase, False)]  # the tool is slow: said already, not again
    metrics = turn_metrics("c", generation, interrupted=False)
    assert metrics.early_hold and not metrics.early_opener
    assert agent.state.history[-1].role == "user"  # not in the LLM's words


async def test_no_early_holding_phrase_without_served_tools_or_when_off() -> None:
    for serving, early_hold in [(False, True), (True, False)]:
        agent, out = await prepared()
        agent.settings.early_hold = early_hold
        if serving:
            serving_tools(agent)
        with_peek(OPEN, agent)
        await agent.carry_out([ended(FINAL)])
        assert out.spoken == [] and out.continued_from == [""], (serving, early_hold)
        assert agent.current is not None and not agent.current.holding_said
