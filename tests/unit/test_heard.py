"""Arguments the caller must have said (voxbus.tools.heard): times, numbers and words as whisper
writes them, and the LLM's guesses refused."""

from __future__ import annotations

import pytest

from voxbus.tools.heard import (
    MARK,
    Said,
    not_said,
    numbers,
    times_in,
    times_meant,
    to_ask,
    unheard,
    value_said,
)


def everyone(text: str) -> Said:
    """Words the caller said (and so everyone)."""
    return Said(text, text)


MOVE = {
    "type": "object",
    "properties": {
        "appointment_id": {"type": "integer"},
        "day": {"type": "string", MARK: True},
        "time": {"type": "string", MARK: True},
    },
}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("11:30", "Please move my appointment to Friday at eleven thirty."),
        ("11:30", "Please move my appointment to Friday 1130."),
        ("11:30", "Hello, please move my appointment to the Friday 11th 30."),
        ("13:30", "I'd like to move my appointment to Monday 1 30."),
        ("14:00", "to Wednesday at two in the afternoon"),
        ("10:30", "Tuesday at half past ten"),
        ("12:00", "Please reschedule my appointment to Wednesday at noon."),
        ("16:45", "Thursday at a quarter to five... no, four forty-five"),
        ("Friday", "Could you change my appointment to friday?"),
        ("2026-12-04", "tomorrow please"),  # the model's reading of a relative day: not judged
        (45, "forty five"),
        (12, "my booking number is 12"),
    ],
)
def test_what_was_said_counts(value: object, said: str) -> None:
    assert value_said(value, said)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("10:00", "Hi, move my appointment to Friday at free please."),  # "three" misheard
        ("10:00", "Hi, can you move my appointment to the Monday, September?"),
        ("14:00", "Can I move my appointment to Thursday at four?"),  # four is not two
        ("11:30", "Monday at eleven"),  # the half hour was not said
        ("Thursday", "Please move my appointment to do that, have passed in."),
        ("Wednesday", "Please reschedule my appointment to end my noon."),
        (7, "two or three"),
    ],
)
def test_a_guess_does_not(value: object, said: str) -> None:
    assert not value_said(value, said)


def test_numbers_in_digits_and_words() -> None:
    assert numbers("1130 and twenty five, 3rd") == {1130, 11, 30, 20, 5, 25, 3}


def test_only_marked_arguments_are_checked() -> None:
    guess = {"appointment_id": 12, "day": "Friday", "time": "10:00"}
    assert unheard(MOVE, guess, everyone("Move it to Friday at free.")) == ["time '10:00'"]
    assert unheard(MOVE, guess, everyone("Friday at ten, please.")) == []  # the id comes from the records
    assert unheard({"type": "object"}, guess, everyone("")) == []  # nothing marked: nothing checked


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("Can I move my appointment to Thursday at four?", ["04:00", "16:00"]),
        ("Please move my appointment to Friday 11th 30.", ["11:30", "23:30"]),
        ("Hello, I'd like to move my appointment to Monday 1. 30.", ["01:30", "13:30"]),
        ("Please move my appointment to Tuesday at half past ten.", ["10:30", "22:30"]),
        ("to Wednesday at two in the afternoon", ["02:00", "14:00"]),
        ("Can you put my appointment on Monday 1130 instead?", ["11:30", "23:30"]),
        ("Wednesday at noon", ["12:00"]),
        ("I have two kids and a dog.", []),
        ("Move it to do that, have passed in.", []),
    ],
)
def test_the_times_said_are_read_in_both_halves_of_the_day(text: str, times: list[str]) -> None:
    assert times_in(text) == times


def test_a_guessed_time_is_refused_with_the_times_that_were_said() -> None:
    guess = {"appointment_id": 12, "day": "Thursday", "time": "14:00"}
    reason = not_said(MOVE, guess, everyone("Can I move my appointment to Thursday at four?"))
    assert reason == "the caller has not said the time '14:00' (times said in the call: 04:00, 16:00)"
    said = {"appointment_id": 12, "day": "Thursday", "time": "16:00"}
    assert not_said(MOVE, said, everyone("Can I move my appointment to Thursday at four?")) is None
    # a guessed day alone: no times offered
    day_guess = {"appointment_id": 12, "day": "Friday", "time": "16:00"}
    reason = not_said(MOVE, day_guess, everyone("Thursday at four"))
    assert reason == "the caller has not said the day 'Friday'"


def test_a_time_offered_counts_only_if_the_callers_turn_names_none() -> None:
    offered = "The nearest free times on Friday: 13:00, 14:30 and 15:30."
    guess = {"appointment_id": 12, "day": "Friday", "time": "13:00"}
    # the caller named a time of their own: the offered 13:00 is not it
    named = Said(f"{offered} Friday at 3.", "Friday at 3.", "Friday at 3.")
    assert unheard(MOVE, guess, named) == ["time '13:00'"]
    assert unheard(MOVE, {**guess, "time": "15:00"}, named) == []
    # "The first one, please.": the offer the caller heard is the time meant
    taken = Said(f"{offered} The first one, please.", "The first one, please.", "The first one, please.")
    assert unheard(MOVE, guess, taken) == []
    # refused, not replaced by the turn's time, which may be the one the caller turns down
    later = {**guess, "time": "15:30"}
    turn = "Not at 3, later."
    assert unheard(MOVE, later, Said(f"{offered} {turn}", turn, turn)) == ["time '15:30'"]
    assert times_meant(MOVE, later, turn, f"{offered} {turn}") == {}


def test_a_flag_set_true_needs_its_name_said() -> None:
    booking = {
        "type": "object",
        "properties": {"time": {"type": "string", MARK: True}, "another": {"type": "boolean", MARK: True}},
    }
    twice = {"time": "11:30", "another": True}
    assert unheard(booking, twice, everyone("Monday, 1130.")) == ["word 'another'"]
    assert unheard(booking, twice, everyone("I'd like another appointment, Monday at 11:30.")) == []
    assert unheard(booking, {"time": "11:30", "another": False}, everyone("Monday, 1130.")) == []
    # the agent's word is not the caller's: "Would you like another one?" - "No, Monday at 11:30."
    offered = Said("Would you like another one? No, just Monday at 11:30.", "No, just Monday at 11:30.")
    assert unheard(booking, twice, offered) == ["word 'another'"]
    assert unheard(booking, {"time": "11:30", "another": False}, offered) == []  # the time: anyone's


@pytest.mark.parametrize(
    ("guess", "turn", "meant"),
    [
        ("14:00", "Thursday at four.", {"time": "16:00"}),  # the model's sum: the afternoon's four
        ("03:00", "Thursday at four.", {"time": "04:00"}),  # nearer the morning's
        ("11:13", "Monday 1130.", {"time": "11:30"}),
        ("16:00", "Thursday at four.", {}),  # said: nothing to take
        ("14:00", "Not at four, at five.", {}),  # two times: the caller is asked
        ("20:00", "Friday tonight.", {}),  # no time in the turn
    ],
)
def test_a_time_nobody_said_is_taken_from_the_callers_turn(guess: str, turn: str, meant: dict) -> None:
    arguments = {"appointment_id": 12, "day": "Thursday", "time": guess}
    assert times_meant(MOVE, arguments, turn, f"Hello. {turn}") == meant


def test_a_time_the_agent_offered_is_not_replaced() -> None:
    offered = "I have Thursday at 2:00 pm or Friday at 9:00. Thursday at four."
    assert times_meant(MOVE, {"day": "Thursday", "time": "14:00"}, "Thursday at four.", offered) == {}


def test_what_to_ask_again_is_named_by_title_or_name_and_never_a_flag() -> None:
    booking = {
        "type": "object",
        "properties": {
            "day": {"type": "string", MARK: True},
            "start_time": {"type": "string", MARK: True},
            "clinic_site": {"type": "string", "title": "practice", MARK: True},
            "another": {"type": "boolean", MARK: True},
        },
    }
    guess = {"day": "Friday", "start_time": "16:30", "clinic_site": "north", "another": True}
    assert to_ask(booking, guess, everyone("Friday at four, please.")) == ["start time", "practice"]
    assert (
        to_ask(booking, {**guess, "start_time": "16:00", "clinic_site": "x"}, everyone("x on Friday at 4"))
        == []
    )
