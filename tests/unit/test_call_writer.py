"""A tool call written in pieces (voxbus/engines/call_writer.py): the schema's fixed words put in,
the model asked only for the name and each value, each value ended by what follows it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from voxbus.engines.call_writer import complete_name, complete_value, write_call

RESCHEDULE = {
    "name": "reschedule",
    "parameters": {
        "type": "object",
        "properties": {
            "appointment_id": {"type": "integer"},
            "day": {"type": "string", "x-caller-said": True},
        },
        "required": ["appointment_id", "day"],
    },
}
BOOK = {
    "name": "book",
    "parameters": {
        "type": "object",
        "properties": {"day": {"type": "string"}, "kind": {"type": "string"}},
        "required": ["day"],
    },
}
HANG_UP = {"name": "hang_up", "parameters": {"type": "object", "properties": {}}}
TOOLS = [{"type": "function", "function": f} for f in (RESCHEDULE, BOOK, HANG_UP)]
BEFORE = "<|im_start|>assistant\n<tool_call>\n"


class Model:
    """Stands in for the engine's grammar decoding: answers each piece from a script, in tokens,
    and records what it was asked (the prompt so far); stops when the writer says it is done."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers
        self.prompts: list[str] = []

    def decode(self, prompt: str, _grammar: Any, _limit: int, done: Callable[[str], bool]) -> Iterator[str]:
        self.prompts.append(prompt)
        said = ""
        for token in self.answers.pop(0):
            said += token
            yield token
            if done(said):
                return


def written(answers: list[list[str]]) -> tuple[str, Model]:
    model = Model(answers)
    return "".join(write_call(BEFORE, TOOLS, model.decode)), model


def test_the_schemas_words_are_put_in_and_the_model_writes_the_name_and_values() -> None:
    text, model = written([["res", "chedule"], [" ", "12", ","], [' "', "Friday", '"}}']])
    assert json.loads(text) == {"name": "reschedule", "arguments": {"appointment_id": 12, "day": "Friday"}}
    assert text == '{"name": "reschedule", "arguments": {"appointment_id": 12, "day": "Friday"}}'
    # each piece is asked on the call so far: the keys were evaluated as prompt, not decoded
    assert model.prompts == [
        BEFORE + '{"name": "',
        BEFORE + '{"name": "reschedule", "arguments": {"appointment_id":',
        BEFORE + '{"name": "reschedule", "arguments": {"appointment_id": 12, "day":',
    ]


def test_a_tool_without_arguments_needs_only_its_name() -> None:
    text, model = written([["hang", "_up"]])
    assert json.loads(text) == {"name": "hang_up", "arguments": {}} and len(model.prompts) == 1


def test_optional_properties_leave_the_object_to_the_model() -> None:
    text, model = written([["book"], [' {"', 'day": "Monday"', "}", "}"]])
    assert json.loads(text) == {"name": "book", "arguments": {"day": "Monday"}}
    assert model.prompts[-1] == BEFORE + '{"name": "book", "arguments":'


def test_a_call_cut_short_is_left_unfinished() -> None:
    text, _ = written([["res", "chedule"], [" ", "1"]])  # cancelled mid-value: no closing braces
    assert text.endswith('"appointment_id": 1')


def test_a_piece_ends_at_what_follows_it_not_at_the_grammars_end() -> None:
    assert complete_value(" 12,", ",") and complete_value(' "Friday"}}', "}}")
    assert not complete_value(" 12", ",")  # a number may go on
    assert not complete_value(' "Friday,', ",")  # a comma inside a string
    assert complete_value(' "Friday, 9",', ",") and complete_value(" true}}", "}}")
    assert complete_name("book", ["book", "reschedule"])
    assert not complete_name("book", ["book", "book_again"])  # another name may go on from it
    assert not complete_name("boo", ["book"])
