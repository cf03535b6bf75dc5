"""The agent's side with tools, without a bus: a generation that ends on a served tool call waits
for it, says the holding phrase when it takes a moment, answers from the result, offers a person
when the tool cannot be asked, and never loses a result to a barge-in."""

from __future__ import annotations

from typing import Any

import pytest

from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.conversation import Conversation
from voxbus.actors.call.generation import Generation
from voxbus.actors.call.tool_use import ToolFinished
from voxbus.actors.call.turn_taking import EndTurn, StartSpeculative
from voxbus.actors.tools import ToolCall
from voxbus.clock import ManualClock
from voxbus.config import AgentSettings
from voxbus.schemas.events import PlayoutDone, SttFinal
from voxbus.schemas.messages import CallState, ChatMessage, LlmChunk
from voxbus.tools.invoke import ToolOutcome

CALL = '<tool_call>{"name": "list_free_slots", "arguments": {"day": "friday"}}</tool_call>'


class FakeOut:
    """Records what the agent's side sends (a stand-in for the bus in a unit test)."""

    call_id = "c"

    def __init__(self) -> None:
        self.spoken: list[tuple[str, bool]] = []
        self.llm_requests: list[list[ChatMessage]] = []
        self.events: list[Any] = []
        self.tools: list[dict[str, Any]] = []
        self.warmed: list[list[ChatMessage]] = []
        self.told_stt: list[str] = []  # the agent's words each reply is to be heard after
        self.peeks: list[int] = []  # peek_tokens of each warm-up
        self.peeks_for: list[tuple] = []  # and the openers it decodes toward
        self.continued_from: list[str] = []  # each LLM request's continue_from

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def error(self, code: str, message: str) -> None:
        self.events.append((code, message))

    async def control(self, action: str, gen: int | None = None) -> bool:
        return True

    async def send(self, command: Any) -> bool:
        return True

    async def cancel(self, generation: Generation, reason: str) -> None: ...

    async def tell_stt_said(self, text: str) -> None:
        self.told_stt.append(text)

    async def request_llm(self, generation: Generation, messages: list[ChatMessage]) -> None:
        generation.llm.worker = "llm-1"
        generation.llm.request_no += 1  # as Outbound.request_llm does
        self.llm_requests.append(messages)
        self.continued_from.append(generation.llm.raw)

    async def warm_llm(
        self, gen: int, turn: int, messages: list[ChatMessage], peek_tokens: int = 0, peek_for: tuple = ()
    ) -> None:
        self.warmed.append(messages)
        self.peeks.append(peek_tokens)
        self.peeks_for.append(peek_for)

    async def speak(self, generation: Generation, text: str, last: bool) -> None:
        generation.tts_request("c", text, last, 0.0)
        self.spoken.append((text, last))


class FakeStore:
    async def save(self, state: CallState) -> None: ...


class FakeTools:
    def __init__(self) -> None:
        self.started: list[ToolCall] = []
        self.said: list[str] = []  # the words each call's arguments were to come from
        self.reported: list[ToolFinished] = []
        self.specs = {"reschedule": "the calendar's"}  # served tools, as ToolUse finds them

    async def ready(self) -> None: ...

    def enrich(self, state: CallState) -> None: ...

    def start(self, generation: Generation, call: ToolCall, said: str = "") -> None:
        self.said.append(said)
        generation.tools_started += 1
        generation.round_calls += 1
        generation.tools_pending += 1
        self.started.append(call)

    def report(self, done: ToolFinished) -> None:
        self.reported.append(done)


def agent() -> tuple[AgentSide, FakeOut, FakeTools, ManualClock]:
    clock, out, tools = ManualClock(), FakeOut(), FakeTools()
    settings = AgentSettings(tool_hold_after_ms=400)
    side = AgentSide(
        Conversation(CallState(call_id="c", owner="a"), settings), FakeStore(), out, settings, clock
    )  # type: ignore[arg-type]
    side.tools = tools  # type: ignore[assignment]
    return side, out, tools, clock


def chunk(side: AgentSide, text: str, done: bool = False) -> LlmChunk:
    assert side.current is not None
    llm = side.current.llm
    return LlmChunk(
        call_id="c",
        gen=side.current.gen,
        seq=0,
        text=text,
        done=done,
        worker_id="llm-1",
        request_no=llm.request_no,
    )


async def caller_says(side: AgentSide, text: str) -> Generation:
    final = SttFinal(call_id="c", text=text, start_ms=0, end_ms=900, compute_s=0.1, ts=0.0)
    await side.carry_out([EndTurn(final, 0.0, None, None, None, None)])
    assert side.current is not None
    return side.current


async def tool_called(said: str) -> tuple[AgentSide, FakeOut, Generation]:
    """The caller said ``said``; the LLM answered with one served tool call, now running."""
    side, out, _tools, _clock = agent()
    generation = await caller_says(side, said)
    await side.chunk(chunk(side, CALL))
    await side.chunk(chunk(side, "", done=True))
    return side, out, generation


def result(
    generation: Generation,
    ok: bool = True,
    failure: str | None = None,
    ask: tuple[str, ...] = (),
    say: str = "",
    index: int = 0,
) -> ToolFinished:
    outcome = ToolOutcome(
        name="list_free_slots", arguments={}, ok=ok, result={"free": ["11:30"]} if ok else None,
        error="" if ok else "no service serves list_free_slots right now", failure=failure,  # type: ignore[arg-type]
        ask=list(ask), say=say,
    )  # fmt: skip
    return ToolFinished(generation, f"c:{generation.gen}:{index}", outcome)


async def test_a_slow_tool_gets_the_holding_phrase_and_the_answer_comes_from_its_result() -> None:
    side, out, tools, clock = agent()
    generation = await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, CALL))
    await side.chunk(chunk(side, "", done=True))
    assert [c.name for c in tools.started] == ["list_free_slots"] and out.spoken == []
    clock.advance(0.3)
    await side.hold_if_tool_slow()
    assert out.spoken == []  # a moment is not yet too long
    clock.advance(0.2)
    await side.hold_if_tool_slow()
    await side.hold_if_tool_slow()
    assert out.spoken == [("One moment, let me check.", False)]  # once, and not the last clause
    await side.tool_finished(result(generation))
    assert len(out.llm_requests) == 2  # asked again, with the tool's response
    roles = [m.role for m in out.llm_requests[-1]]
    assert roles[-3:] == ["user", "assistant", "tool"]
    assert (
        '"11:30"' in out.llm_requests[-1][-1].content
        and "list_free_slots" in out.llm_requests[-1][-2].content
    )
    await side.chunk(chunk(side, "Friday at 11:30 is free."))
    await side.chunk(chunk(side, "", done=True))
    assert out.spoken[-1] == ("", True) and ("Friday at 11:30 is free.", False) in out.spoken
    history = [(m.role, m.content) for m in side.conversation.history]
    assert history[-1] == ("assistant", "Friday at 11:30 is free.")
    assert [r for r, _ in history] == ["user", "assistant", "tool", "assistant"]


async def test_the_holding_phrase_counts_from_when_the_call_began_to_be_written() -> None:
    """A small model takes seconds to write a call's arguments: the caller hears the holding
    phrase while it does, not only once the call is whole and sent."""
    side, out, tools, clock = agent()
    await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, '<tool_call>\n{"name": "list_free_slots", "arg'))
    clock.advance(0.5)
    await side.hold_if_tool_slow()
    assert out.spoken == [("One moment, let me check.", False)] and tools.started == []
    await side.chunk(chunk(side, 'uments": {"day": "friday"}}\n</tool_call>'))
    await side.chunk(chunk(side, "", done=True))
    await side.hold_if_tool_slow()
    assert [c.name for c in tools.started] == ["list_free_slots"] and len(out.spoken) == 1


async def test_the_wait_counts_from_the_calls_opening_not_from_its_name() -> None:
    """The bundled model writes a call's name ~0.8 s after its opening tag: the holding phrase is
    said as soon as the name shows a served tool, not 400 ms after that."""
    side, out, _tools, clock = agent()
    await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, "<tool_call>"))
    clock.advance(0.8)
    await side.hold_if_tool_slow()
    assert out.spoken == []  # which tool: not known yet (a transfer gets no such phrase)
    await side.chunk(chunk(side, '\n{"name": "list_free_slots", "arg'))
    await side.hold_if_tool_slow()
    assert out.spoken == [("One moment, let me check.", False)]


async def test_a_call_being_written_for_seconds_is_not_asked_again() -> None:
    """Constrained decoding of a call's arguments is seconds of silence from a busy worker: the
    first-token timeout applies to it, not the 2 s of a stalled stream of words."""
    side, out, _tools, clock = agent()
    generation = await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, "<tool_call>"))
    clock.advance(side.settings.request_timeout_s + 1.0)
    assert generation.llm.retry_reason(clock.monotonic(), side.settings.request_timeout_s) is None
    await side.chunk(chunk(side, '{"name": "list_free_slots", "arguments": {}}</tool_call>Sure.'))
    clock.advance(side.settings.request_timeout_s + 1.0)
    assert generation.llm.retry_reason(clock.monotonic(), side.settings.request_timeout_s)


async def test_a_transfer_being_written_gets_no_tool_holding_phrase() -> None:
    side, out, _tools, clock = agent()
    await caller_says(side, "Can I talk to a person?")
    await side.chunk(chunk(side, '<tool_call>\n{"name": "transfer_to_human", "arg'))
    clock.advance(1.0)
    await side.hold_if_tool_slow()
    assert out.spoken == []


async def test_a_tool_that_cannot_be_asked_ends_the_answer_with_an_offer_of_a_person() -> None:
    side, out, generation = await tool_called("Anything free on Friday?")
    await side.tool_finished(result(generation, ok=False, failure="unavailable"))
    assert len(out.llm_requests) == 1  # not asked again
    assert said_last(out) == AgentSettings().tool_failure_phrase
    assert side.conversation.history[-1].content == AgentSettings().tool_failure_phrase


async def test_a_refusal_goes_back_to_the_llm_which_says_what_follows() -> None:
    side, out, generation = await tool_called("Move it to Saturday at ten.")
    await side.tool_finished(result(generation, ok=False, failure="refused"))
    assert len(out.llm_requests) == 2 and '"error"' in out.llm_requests[-1][-1].content


def said_last(out: FakeOut) -> str:
    """The clauses said since the last one the LLM's words ended (the agent's own phrase), the
    last of them flagged as the answer's end."""
    assert out.spoken[-1][1]
    clauses = [text for text, _last in out.spoken]
    begin = max((i + 1 for i, (_t, last) in enumerate(out.spoken[:-1]) if last), default=0)
    return " ".join(c for c in clauses[begin:] if c)


QUESTION = "Sorry, I didn't catch the day and time. Could you say that again?"
CONFIRMED = "Done: your appointment is now on Friday, December 4, at 11:30."


@pytest.mark.parametrize(
    ("outcome", "answer", "response"),
    [
        # the model guessed the time ("Friday at eleven" heard as "Friday 11th early"): the agent
        # asks for it itself; another LLM round, told to ask, repeated the greeting or guessed again
        ({"ok": False, "failure": "not_said", "ask": ("day", "time")}, QUESTION, '"error"'),
        # the tool worded the confirmation: said at once, no LLM round to read the result
        ({"say": CONFIRMED}, CONFIRMED, '"11:30"'),
    ],
)
async def test_the_agent_ends_the_answer_itself_without_another_llm_round(
    outcome: dict[str, Any], answer: str, response: str
) -> None:
    side, out, generation = await tool_called("Please move my appointment to Friday 11th early.")
    await side.tool_finished(result(generation, **outcome))
    assert len(out.llm_requests) == 1 and said_last(out) == answer
    assert len(out.spoken) > 2  # in clauses: piper speaks the first while it makes the next
    history = [(m.role, m.content) for m in side.conversation.history]
    assert [r for r, _ in history] == ["user", "assistant", "tool", "assistant"]
    assert response in history[2][1] and history[3] == ("assistant", answer)


async def test_a_round_with_a_call_the_tool_did_not_word_goes_to_the_llm() -> None:
    side, out, _tools, _clock = agent()
    generation = await caller_says(side, "Anything on Friday, and move it there.")
    two_calls = CALL + CALL.replace("friday", "monday")
    await side.chunk(chunk(side, two_calls))
    await side.chunk(chunk(side, "", done=True))
    await side.tool_finished(result(generation, say="Done: Friday at 11:30."))
    await side.tool_finished(result(generation, index=1))
    assert len(out.llm_requests) == 2  # the LLM says what follows from both


async def test_a_refused_flag_alone_goes_back_to_the_llm() -> None:
    """Nothing to ask by name (the model set ``another`` on its own): the LLM says what follows."""
    side, out, generation = await tool_called("Book me in for Monday at ten.")
    await side.tool_finished(result(generation, ok=False, failure="not_said"))
    assert len(out.llm_requests) == 2


async def test_a_barge_in_while_the_tool_runs_keeps_its_result_and_asks_nothing_more() -> None:
    side, out, generation = await tool_called("Anything free on Friday?")
    await side.cancel(generation, "barge-in", heard="")
    await side.tool_finished(result(generation))
    assert len(out.llm_requests) == 1
    assert side.conversation.history[-1].role == "tool" and "11:30" in side.conversation.history[-1].content


async def test_a_result_before_the_llm_ends_keeps_the_history_in_order() -> None:
    side, out, _tools, _clock = agent()
    generation = await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, CALL))
    await side.tool_finished(result(generation))  # a fast tool answers before the done chunk
    assert len(out.llm_requests) == 1
    await side.chunk(chunk(side, "", done=True))
    assert [m.role for m in side.conversation.history] == ["user", "assistant", "tool"]
    assert len(out.llm_requests) == 2


@pytest.mark.parametrize("turn_ends", [True, False])
async def test_a_speculative_answer_calls_its_tools_only_once_the_turn_is_over(turn_ends: bool) -> None:
    side, _out, tools, _clock = agent()
    await side.carry_out([StartSpeculative(text="Move it to Friday at 11:30")])
    speculative = side.current
    assert speculative is not None
    await side.chunk(chunk(side, CALL))
    await side.chunk(chunk(side, "", done=True))
    assert tools.started == []  # nothing is done on words the caller may take back
    final = SttFinal(
        call_id="c", text="Move it to Friday at 11:30", start_ms=0, end_ms=900, compute_s=0.1, ts=0.0
    )
    if turn_ends:
        await side.carry_out([EndTurn(final, 0.0, None, None, speculative, None)])
        assert [c.name for c in tools.started] == ["list_free_slots"]
    else:
        await side.cancel(speculative, "the caller went on")
        assert tools.started == []


async def test_the_same_call_twice_in_one_answer_is_not_made_again() -> None:
    side, out, tools, _clock = agent()
    generation = await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, CALL))
    await side.chunk(chunk(side, "", done=True))
    await side.tool_finished(result(generation))
    await side.chunk(chunk(side, CALL))  # the model asks again for what it has
    await side.chunk(chunk(side, "", done=True))
    assert len(tools.started) == 1 and len(out.llm_requests) == 3  # not called; the LLM asked again
    assert "already called" in out.llm_requests[-1][-1].content
    assert [m.role for m in out.llm_requests[-1][-4:]] == ["assistant", "tool", "assistant", "tool"]


async def test_the_greeting_is_evaluated_by_the_llm_while_it_is_said() -> None:
    side, out, _, _ = agent()
    await side.greet()
    assert out.spoken == [(side.settings.greeting, True)]
    assert out.warmed and out.warmed[-1][-1].content == side.settings.greeting  # before the caller speaks


async def test_a_tools_arguments_are_checked_against_the_words_of_the_call() -> None:
    """What the caller and the agent said (the agent's offers included, its tool calls and the
    tools' responses not) is what an argument marked ``x-caller-said`` must come from."""
    side, _out, tools, _clock = agent()
    generation = await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, CALL))
    await side.chunk(chunk(side, "", done=True))
    await side.tool_finished(result(generation))
    await side.chunk(chunk(side, "I have 11:30 on Friday."))
    await side.chunk(chunk(side, "", done=True))
    await caller_says(side, "The first one, please.")
    await side.chunk(chunk(side, CALL))
    said, by_caller, turn = tools.said[-1]
    assert "Anything free on Friday?" in said and "I have 11:30 on Friday." in said
    assert said.endswith("The first one, please.")
    assert "<tool_call>" not in said and '"free"' not in said  # nor the response
    # the caller's own words, for a flag that only the caller's word may set
    assert "Anything free on Friday?" in by_caller and "11:30" not in by_caller
    assert by_caller.endswith("The first one, please.") and turn == "The first one, please."


async def test_an_answer_that_opens_with_the_greeting_again_is_heard_without_it() -> None:
    side, out, _tools, _clock = agent()
    greeting = side.settings.greeting
    await caller_says(side, "Can you move my appointment?")
    await side.chunk(chunk(side, greeting + " Which day would suit you?"))
    await side.chunk(chunk(side, "", done=True))
    spoken = " ".join(text for text, _last in out.spoken)
    assert "Which day would suit you?" in spoken and greeting.split(".")[0] not in spoken
    assert side.conversation.history[-1].content == "Which day would suit you?"


async def test_words_said_while_a_tool_works_are_answered_after_its_answer() -> None:
    """The caller says the time again into the silence after the holding phrase: the tool call
    goes on, its answer is said, then their words are answered (not cut, not lost)."""
    side, out, _tools, clock = agent()
    generation = await caller_says(side, "Anything free on Friday?")
    await side.chunk(chunk(side, CALL))
    await side.chunk(chunk(side, "", done=True))
    clock.advance(0.5)
    await side.hold_if_tool_slow()
    assert generation.waits_on_tool
    final = SttFinal(call_id="c", text="Friday at eleven thirty.", start_ms=0, end_ms=900, compute_s=0.1)
    await side.carry_out([EndTurn(final, 0.0, None, None, None, None, awaited=generation)])
    assert side.current is generation and len(out.llm_requests) == 1  # it goes on, its call too
    await side.tool_finished(result(generation))
    await side.chunk(chunk(side, "Friday at 11:30 is free."))
    await side.chunk(chunk(side, "", done=True))
    played = PlayoutDone(call_id="c", gen=generation.gen, played_ms=5800, complete=True)
    assert await side.playout_done(played) == generation.gen
    await side.answer_turn_after_words()
    assert side.current is not generation and side.current is not None
    assert out.llm_requests[-1][-1] == ChatMessage(role="user", content="Friday at eleven thirty.")
