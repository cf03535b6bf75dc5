"""The local LLM engine with the test model: ``llm.min_tokens`` keeps an answer going; a warm-up
of a prompt gives way to a real request and keeps what it evaluated."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import jsonschema
import pytest

from voxbus.actors.call.early_opener import PEEK_TOKENS
from voxbus.config import Settings
from voxbus.engines.llm import PEEK_END, WARM_CHUNK_TOKENS, LlamaEngine
from voxbus.engines.tool_calls import CLOSE, OPEN
from voxbus.schemas.messages import ChatMessage

pytestmark = pytest.mark.integration
ASK = [
    ChatMessage(role="system", content="Answer in one word."),
    ChatMessage(role="user", content="Say yes."),
]


def test_min_tokens_keeps_the_answer_from_ending_early(settings: Settings, open_llm) -> None:  # noqa: ANN001
    settings.llm.min_tokens = 0  # whatever the environment says (make test-long sets it)
    brief = open_llm(settings.llm)
    assert len(list(brief.stream(ASK, max_tokens=60, temperature=0.0))) < 30
    settings.llm.min_tokens = 40
    long = open_llm(settings.llm)
    assert len(list(long.stream(ASK, max_tokens=60, temperature=0.0))) >= 40


def test_a_warm_up_gives_way_and_what_it_evaluated_stays(settings: Settings, open_llm) -> None:  # noqa: ANN001
    settings.llm.parallel = 1  # one context (batched, a real request goes first in every step)
    engine = open_llm(settings.llm)
    opening = [ChatMessage(role="system", content="You are a clinic's receptionist. " * 40)]
    prompt = engine.next_turn_prefix(opening)  # what a warm-up evaluates (see the test below)
    tokens = engine.llm.tokenize(prompt.encode(), special=True)
    assert len(tokens) > 3 * WARM_CHUNK_TOKENS
    asked = []

    def after_two_chunks() -> bool:
        asked.append(1)
        return len(asked) > 2  # a request arrived while the third chunk was due

    assert engine.warm(opening, stop=after_two_chunks) is False
    assert engine.llm.n_tokens == 2 * WARM_CHUNK_TOKENS  # the chunks evaluated before it stayed
    assert list(engine.llm.input_ids[: engine.llm.n_tokens]) == tokens[: 2 * WARM_CHUNK_TOKENS]
    assert engine.warm(opening) is True  # the next warm-up goes on from there, to the end
    assert list(engine.llm.input_ids[: engine.llm.n_tokens]) == tokens
    assert engine.warm(opening, stop=lambda: True) is True  # all held already: nothing to stop
    # a call's request on that opening answers as usual
    assert "".join(engine.stream([*opening, ASK[1]], max_tokens=8, temperature=0.0))


def test_a_warm_up_evaluates_the_header_of_the_callers_next_turn(settings: Settings, open_llm) -> None:  # noqa: ANN001
    engine = open_llm(settings.llm)
    history = [
        ChatMessage(role="system", content="You are a clinic's receptionist."),
        ChatMessage(role="assistant", content="Hello, how can I help you?"),
    ]
    turn = [*history, ChatMessage(role="user", content="I need to move my appointment.")]

    def tokens(text: str) -> list[int]:
        return engine.llm.tokenize(text.encode(), special=True)

    def shared(warm: str) -> int:
        full, ahead = tokens(engine.prompt(turn)[0]), tokens(warm)
        return next((i for i, (a, b) in enumerate(zip(full, ahead, strict=False)) if a != b), len(ahead))

    ahead = engine.next_turn_prefix(history)
    assert engine.prompt(turn)[0].startswith(ahead)  # the caller's turn continues it
    assert shared(ahead) == len(tokens(ahead))  # every token of it is the turn's own
    assert shared(ahead) > shared(engine.prompt(history)[0])  # more than the history's rendering
    # a conversation that already ends with the caller's words (a partial transcript): as it is
    assert engine.next_turn_prefix(turn) == engine.prompt(turn)[0]


RECEPTIONIST = ChatMessage(role="system", content="You are a clinic's receptionist.")


def batched_and_not(settings: Settings, open_llm) -> Iterator[LlamaEngine]:  # noqa: ANN001
    """The test model's engine decoding in batches (``llm.parallel`` 4), then one at a time."""
    for parallel in (4, 1):
        settings.llm.parallel = parallel
        yield open_llm(settings.llm)


def test_a_peek_is_how_the_answer_begins(settings: Settings, open_llm) -> None:  # noqa: ANN001
    """``LlamaEngine.peek`` (the LLM worker's warm-up with ``peek_tokens``): the caller's words so
    far evaluated, and the greedy answer's first word group, or as many tokens of it as asked,
    never past its first punctuation; batched and not."""
    turn = [
        RECEPTIONIST,
        ChatMessage(role="user", content="I need to move my appointment to Friday, please."),
    ]
    for engine in batched_and_not(settings, open_llm):
        parallel = engine.parallel
        peek = engine.peek(turn, PEEK_TOKENS, session="c1")
        answer = "".join(engine.stream(turn, max_tokens=16, temperature=0.0, session="c1"))
        assert peek and answer.startswith(peek), (parallel, peek, answer)
        assert len(PEEK_END.findall(peek)) <= 1  # it stopped at the first word group's end
        one = engine.peek(turn, 1, session="c1")  # the first token: from the prompt's last step
        assert one and peek.startswith(one), (parallel, one, peek)
        # toward openers its first token cannot become: no token more
        assert engine.peek(turn, PEEK_TOKENS, session="c1", wanted=("Zzyzx",)) == one
        other = [*turn[:1], ChatMessage(role="user", content="Can I book a cleaning on Monday?")]
        assert engine.peek(other, PEEK_TOKENS, session="c2", stop=lambda: True) == ""  # gave way at once


SCHEDULE = {  # bounded values: whatever the test model writes, each value ends
    "name": "reschedule",
    "description": "Move the appointment.",
    "parameters": {
        "type": "object",
        "properties": {
            "appointment_id": {"type": "integer"},
            "day": {"type": "string", "enum": ["Monday", "Friday"]},
        },
        "required": ["appointment_id", "day"],
    },
}
BOOK = {
    "name": "book",
    "description": "Book an appointment.",
    "parameters": {
        "type": "object",
        "properties": {
            "day": {"type": "string", "enum": ["Monday", "Friday"]},
            "kind": {"type": "string", "enum": ["check-up", "cleaning"]},
        },
        "required": ["day"],
    },
}
HANG_UP = {
    "name": "hang_up",
    "description": "End the call.",
    "parameters": {"type": "object", "properties": {}},
}
CALL_TOOLS = [{"type": "function", "function": f} for f in (SCHEDULE, BOOK, HANG_UP)]


def cancelled_after(checks: int) -> Callable[[], bool]:
    """A cancel flag that turns true after ``checks`` looks at it."""
    looked: list[int] = []

    def cancelled() -> bool:
        looked.append(1)
        return len(looked) > checks

    return cancelled


def test_a_tool_call_is_written_whole_and_valid_in_pieces_or_whole(settings: Settings, open_llm) -> None:  # noqa: ANN001
    """Once the model opens a call, what follows is one of the offered tools with arguments of its
    schema, written in pieces (the schema's words put in) or under the whole grammar, batched and
    not, whatever the test model writes; cancelled, it stops without closing the call."""
    turn = [RECEPTIONIST, ChatMessage(role="user", content="Please move my appointment to Friday.")]
    for engine in batched_and_not(settings, open_llm):
        parallel = engine.parallel
        before, stops = engine.prompt(turn, tools=CALL_TOOLS)
        for pieces in (True, False):
            engine.write_calls_in_pieces = pieces
            text = "".join(engine._tool_call(before, stops, CALL_TOOLS, lambda: False, "c1"))
            assert text.startswith(OPEN + "\n") and text.endswith("\n" + CLOSE), (parallel, pieces, text)
            call = json.loads(text[len(OPEN) : -len(CLOSE)])
            [tool] = [t["function"] for t in CALL_TOOLS if t["function"]["name"] == call["name"]]
            jsonschema.validate(call["arguments"], tool["parameters"])
        engine.write_calls_in_pieces = True
        cut = "".join(engine._tool_call(before, stops, CALL_TOOLS, cancelled_after(3), "c1"))
        assert cut.startswith(OPEN) and CLOSE not in cut, (parallel, cut)
