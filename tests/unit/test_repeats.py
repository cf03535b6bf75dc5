"""The greeting's first sentence at the start of an answer is cut (voxbus.actors.call.repeats)."""

from __future__ import annotations

import pytest

from voxbus.actors.call.repeats import OpeningRepeat, first_sentence

GREETING = "Hello, this is Anna at Bright Smile dental. How can I help you?"


def streamed(pieces: list[str]) -> str:
    guard = OpeningRepeat(first_sentence(GREETING))
    return "".join(guard.push(p) for p in pieces) + guard.flush()


def test_the_first_sentence_is_the_one_cut() -> None:
    assert first_sentence(GREETING) == "Hello, this is Anna at Bright Smile dental."
    assert first_sentence("Hi there") == "Hi there"


@pytest.mark.parametrize(
    "pieces",
    [
        ["Hello", ",", " this is", " Anna at Bright Smile dental.", " Your appointment", " is on Friday."],
        ["Hello, this is Anna at Bright Smile dental. Your appointment is on Friday."],
        ["hello,  this is anna at bright smile dental.", "  ", "Your appointment is on Friday."],
    ],
)
def test_a_copied_greeting_is_cut_and_the_rest_said(pieces: list[str]) -> None:
    assert streamed(pieces) == "Your appointment is on Friday."


@pytest.mark.parametrize(
    "answer",
    [
        "Hello! Your appointment is on Friday.",
        "Hello, this is about your booking on Friday.",
        "Sure, I can move it.",
        "Hello,",  # the answer ended while it could still have been the copy
    ],
)
def test_anything_else_is_said_whole(answer: str) -> None:
    assert streamed([answer[:3], answer[3:9], answer[9:]]) == answer


def test_an_answer_that_is_only_the_copy_keeps_it() -> None:
    assert streamed(["Hello, this is Anna", " at Bright Smile dental.", " "]) == (
        "Hello, this is Anna at Bright Smile dental."
    )


def test_nothing_is_held_once_the_answer_has_gone_another_way() -> None:
    guard = OpeningRepeat(first_sentence(GREETING))
    assert guard.push("Hello") == ""  # may be the copy
    assert guard.push("! I") == "Hello! I"
    assert guard.push(" see.") == " see."
