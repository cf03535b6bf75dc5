"""The agent's words that say it is about to act are taken as the tool call they promise."""

from __future__ import annotations

from voxbus.engines.promises import promise, undecided

TOOLS = [
    {"type": "function", "function": {"name": n}}
    for n in ("reschedule", "cancel", "transfer_to_human", "hang_up")
]


def names(found: tuple[int, list[dict]] | None) -> tuple[int, list[str]] | None:
    return None if found is None else (found[0], [t["function"]["name"] for t in found[1]])


def test_a_promise_to_act_is_a_call_of_the_tools_that_do_it() -> None:
    assert names(promise("Sure, I'll cancel your appointment on Thursday.", 0, TOOLS)) == (
        6,
        ["reschedule", "cancel"],
    )
    assert names(promise("Okay, I am going to move it to Friday.", 0, TOOLS)) == (6, ["reschedule", "cancel"])
    assert names(promise("Let me check what is free on Monday.", 0, TOOLS)) == (0, ["reschedule", "cancel"])
    # a transfer is kept by the transfer tool alone, never by the calendar's (nor hang_up)
    assert names(promise("Of course. I’ll put you through now.", 0, TOOLS)) == (11, ["transfer_to_human"])


def test_reports_offers_refusals_and_other_promises_are_words() -> None:
    for said in (
        "I've moved it to Friday at 11:30.",  # after the tool's result: the report
        "I can book 9:00, 11:30 or 14:00.",  # an offer
        "I will not book that without your name.",
        "I'll let the dentist know.",  # no tool does that
        "Is there anything else I'll need to bring?",
    ):
        assert promise(said, 0, TOOLS) is None, said


def test_no_tool_that_keeps_it_no_call() -> None:
    only_control = [t for t in TOOLS if t["function"]["name"] in ("hang_up", "transfer_to_human")]
    assert promise("Sure, I'll book it for you.", 0, only_control) is None
    assert promise("I'll transfer you.", 0, TOOLS[:2]) is None


def test_text_already_spoken_is_not_searched_again() -> None:
    said = "I'll check. Here it is: I'll book it."
    assert names(promise(said, len("I'll check."), TOOLS)) == (24, ["reschedule", "cancel"])


def test_words_that_may_become_a_promise_are_held_back_until_their_verb_could_come() -> None:
    assert undecided("Okay, I'll") == len("I'll")
    assert undecided("Sure, let me just") == len("let me just")
    assert undecided("Sure, I'm going") == len("I'm going")
    assert undecided("Right, I am go") == len("I am go")  # "going", being written
    assert undecided("Okay, I'll go ahead and") == len("I'll go ahead and")
    assert undecided("Sure, of course") == 0
    assert undecided("I'm sorry,") == 0  # the clause ended without one


def test_words_that_can_no_longer_become_a_promise_are_said_at_once() -> None:
    """Held back until the clause ended, "I think the clinic is open..." waited up to six words
    (about half a second of decoding) whenever tools were offered."""
    assert undecided("I think the clinic") == 0
    assert undecided("I'm sorry") == 0
    assert undecided("I can") == 0  # an offer ("I can book 9:00"), not a promise
    assert undecided("I will not") == 0
    assert undecided("Let's") == 0
    assert undecided("I think I'll") == len("I'll")  # a later "I" still may
