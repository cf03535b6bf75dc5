"""A long unpunctuated first clause is cut before a word that opens a word group, once it has
``first_words`` words: the caller hears the agent before the first full stop is decoded."""

from __future__ import annotations

from voxbus.actors.clauses import ClauseSplitter
from voxbus.lexicons import ENGLISH, FRENCH


def clauses(
    text: str, first_words: int = 4, starts: frozenset[str] = ENGLISH.word_group_starts()
) -> list[str]:
    """``text`` streamed as an LLM streams it: a word at a time, its punctuation a token of its own."""
    splitter = ClauseSplitter(12, True, first_words, starts)
    out: list[str] = []
    for word in text.split(" "):
        body, end = (word[:-1], word[-1]) if word[-1] in ".,!?" else (word, "")
        out += splitter.push(f" {body}" if out or splitter.buffer else body)
        if end:
            out += splitter.push(end)
    return [*out, splitter.flush()] if splitter.buffer.strip() else out


def test_a_long_first_sentence_is_cut_before_a_word_group() -> None:
    assert clauses("Please bring your insurance card with you.") == [
        "Please bring your insurance card",
        "with you.",
    ]
    assert clauses("Your appointment with Doctor Smith is now on Friday at nine.") == [
        "Your appointment with Doctor Smith",
        "is now on Friday at nine.",
    ]


def test_the_cut_waits_for_enough_words_and_never_strands_a_function_word() -> None:
    # "for" is only the third word; "the" must not end a clause ("...book for the | ...")
    assert clauses("I can book for the next free time on Monday.")[0] == "I can book for the next free time"
    assert clauses("We are open every day.") == ["We are open every day."]  # no group word after four


def test_the_rest_of_a_sentence_cut_at_a_word_group_is_cut_at_its_next_comma() -> None:
    # waiting for the full stop left the agent silent in mid-sentence after "Life is made up"
    answer = "Life is made up of many different things, such as food, water, and work. It is a gift."
    assert clauses(answer) == [
        "Life is made up",
        "of many different things,",
        "such as food, water, and work.",
        "It is a gift.",
    ]


def test_a_long_rest_with_no_comma_is_cut_at_a_word_group_after_twice_as_many_words() -> None:
    # "A car engine works" is said in a second; the rest to its full stop takes the LLM two
    answer = (
        "A car engine works by converting chemical energy from fuel into mechanical energy to move the car."
    )
    assert clauses(answer) == [
        "A car engine works",
        "by converting chemical energy from fuel into mechanical energy",
        "to move the car.",
    ]
    # after an opener, the sentence that follows is cut at punctuation only, as before
    assert clauses("Sure, I can book you in with Doctor Smith on Friday at nine in the morning.") == [
        "Sure,",
        "I can book you in with Doctor Smith on Friday at nine in the morning.",
    ]


def test_punctuation_still_cuts_first_and_later_sentences_are_whole() -> None:
    assert clauses("Sure, I can help you with that. It is on Friday at nine.") == [
        "Sure,",
        "I can help you with that.",
        "It is on Friday at nine.",
    ]
    assert clauses("Please bring your insurance card with you.", first_words=0) == [
        "Please bring your insurance card with you."
    ]


def test_the_words_follow_the_calls_language() -> None:
    text = "Votre rendez-vous du lundi matin est avec le docteur Martin."
    assert clauses(text, starts=FRENCH.word_group_starts())[0] == "Votre rendez-vous du lundi matin"
    assert "avec" in FRENCH.word_group_starts() and "parce que" not in FRENCH.word_group_starts()
