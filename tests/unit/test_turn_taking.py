"""The turn-taking decisions (when the caller's turn is over), case by case as the README
describes them; the barge-in's are in test_barge_in.py."""

from __future__ import annotations

from voxbus.actors.call.generation import REACTION_S, Generation
from voxbus.actors.call.turn_taking import DropSpeculative, EndTurn, Prefill, StartSpeculative, Withdraw

from .turn_calls import Call, kinds


def test_a_finished_phrase_ends_the_turn() -> None:
    call = Call()
    assert call.start() == []
    call.pause()
    [end] = call.final("What is the capital of France?")
    assert isinstance(end, EndTurn) and end.final.text == "What is the capital of France?"
    assert end.speculative is None and end.superseded is None
    assert end.vad_decision_ts is None  # no speech.ended seen: no latency to measure from


def test_hesitation_starts_a_speculative_answer_that_goes_out_when_the_turn_ends_the_same() -> None:
    call = Call()
    call.start()
    call.pause()
    [start] = call.tentative("I'd like to book a table for, um...")
    assert isinstance(start, StartSpeculative)
    speculative = call.current
    call.end()
    [end] = call.final("I'd like to book a table for, um...", end_reason="unfinished_timeout")
    assert isinstance(end, EndTurn) and end.speculative is speculative and end.superseded is None
    assert end.speech_end_ts is not None and end.vad_decision_ts is not None


def test_the_words_of_a_turn_still_spoken_are_prefilled_while_the_agent_is_silent() -> None:
    call = Call()
    call.start()
    assert call.partial("I need to") == [Prefill("I need to")]
    assert call.partial("I need to move my") == [Prefill("I need to move my")]
    assert call.partial("Hi") == []  # too few words to be worth it
    call.pause()
    assert call.partial("I need to move my appointment") == []  # paused: the turn's end is near
    [end] = call.final("I need to move my appointment.")
    assert isinstance(end, EndTurn) and end.speculative is None  # prefilling starts no answer


def test_no_prefill_over_the_agent_or_beside_a_speculative_answer() -> None:
    call = Call()
    call.agent()
    call.start()  # over the agent: a barge-in, held and judged
    assert call.partial("Sorry, what was that again") == []
    call = Call()
    call.start()
    call.pause()
    call.tentative("I'd like to book a table for")
    assert kinds(call.resume()) == ["DropSpeculative"]  # the caller goes on
    assert call.current is None
    assert call.partial("I'd like to book a table for four") == [Prefill("I'd like to book a table for four")]


def test_words_carried_from_a_withdrawn_turn_lead_the_prefill() -> None:
    call = Call()
    call.final("I'd like to book a table.")
    call.agent(text="", playing=False).user_text = "I'd like to book a table."
    call.start()  # withdrawn: its words are carried
    assert call.partial("For four people") == [Prefill("I'd like to book a table. For four people")]


def test_a_speculative_start_is_dropped_when_the_caller_goes_on() -> None:
    call = Call()
    call.start()
    call.pause()
    call.tentative("I'd like to book a table for")
    speculative = call.current
    [drop] = call.resume()
    assert isinstance(drop, DropSpeculative) and drop.generation is speculative
    call.pause()
    [end] = call.final("I'd like to book a table for four.")
    assert end.speculative is None and end.superseded is None  # a fresh answer to the whole turn


def test_a_speculative_start_on_other_words_is_superseded() -> None:
    call = Call()
    call.tentative("I'd like to, um")
    speculative = call.current
    [end] = call.final("I'd like to pay.")
    assert isinstance(end, EndTurn) and end.speculative is None and end.superseded is speculative


def test_withdrawal_the_caller_goes_on_before_hearing_the_answer() -> None:
    call = Call()
    call.final("I'd like to book a table.")
    answer = call.agent(text="", playing=False)
    answer.user_text = "I'd like to book a table."
    [withdraw] = call.start()
    assert isinstance(withdraw, Withdraw) and withdraw.generation is answer
    [end] = call.final("For four people at seven.")
    assert end.final.text == "I'd like to book a table. For four people at seven."


def answering(said: str, answer_text: str, played_s: float | None) -> tuple[Call, Generation]:
    """A call whose caller said ``said`` and whose answer to it began ``played_s`` ago (None: not
    a frame of it played yet)."""
    call = Call()
    call.final(said)
    answer = call.agent(text=answer_text, playing=False)
    answer.user_text = said
    if played_s is not None:
        answer.timeline.marks["first_audio"] = call.clock.time() - played_s
    return call, answer


def test_the_caller_going_on_before_they_could_react_to_the_answer_withdraws_it_too() -> None:
    # CI: "I'd like to book a table, um" (whisper dropped the "um"); the answer's first frame
    # played 70 ms before the caller went on, who was held, then interrupted the answer by length
    call, answer = answering("I'd like to book a table.", "Sure,", played_s=0.07)
    # held, as any speech over audio already played: it may be the answer's own echo
    assert kinds(call.start()) == ["HoldAudio"]
    call.pause()
    withdraw, end = call.final("For four people at seven.")  # the caller's words: they went on
    assert isinstance(withdraw, Withdraw) and withdraw.generation is answer
    assert isinstance(end, EndTurn)
    assert end.final.text == "I'd like to book a table. For four people at seven."
    # speech that begins once the caller could have heard it is a barge-in, judged as such
    late = Call()
    late.agent(text="Sure, a table for how many?", playing=False).timeline.marks["first_audio"] = (
        late.clock.time() - REACTION_S - 0.01
    )
    assert kinds(late.start()) == ["HoldAudio"]
    late.pause()
    assert kinds(late.final("For four people at seven.")) == ["Interrupt", "EndTurn"]


def test_going_on_by_length_alone_withdraws_the_answer_too() -> None:
    call, answer = answering("I'd like to book a table.", "Sure,", played_s=0.1)
    call.start()
    [withdraw] = call.lasting()
    assert isinstance(withdraw, Withdraw) and withdraw.generation is answer
    call.pause()
    [end] = call.final("for four people at seven tonight, by the window if you can.")
    assert end.final.text.startswith("I'd like to book a table. for four people")


def test_the_echo_of_an_answers_first_word_resumes_it() -> None:
    # latency bench: the echo of "Yes," came back 320 ms into the answer as speech; it withdrew the
    # answer, and its words ("Yeah.") became a turn of their own, whose answer's echo did the same
    call, answer = answering("Is there anything free next Tuesday?", "Yes,", played_s=0.2)
    assert kinds(call.start()) == ["HoldAudio"]
    call.pause()
    assert kinds(call.final("Yeah.")) == ["ResumeAudio"]
    assert call.current is answer and not call.turns.going_on


def test_an_answer_not_heard_at_all_is_withdrawn_at_once() -> None:
    call, answer = answering("I'd like to book a table.", "Sure,", played_s=None)
    [withdraw] = call.start()
    assert isinstance(withdraw, Withdraw) and withdraw.generation is answer


def test_a_greeting_not_yet_heard_is_held_not_withdrawn() -> None:
    call = Call()
    call.agent(kind="greeting", playing=False)
    assert kinds(call.start()) == ["HoldAudio"]


def test_a_short_interruption_waits_for_more_words_and_joins_them() -> None:
    call = Call()
    call.agent()
    call.start()
    call.pause()
    assert kinds(call.final("Stop.")) == ["Interrupt"]  # interrupted, but not answered yet
    call.start()
    call.pause()
    [end] = call.final("What time is it in Tokyo?")
    assert isinstance(end, EndTurn) and end.final.text == "Stop. What time is it in Tokyo?"


def test_a_short_interruption_alone_is_answered_after_the_wait() -> None:
    call = Call()
    call.agent()
    call.start()
    call.pause()
    call.final("Wait, sorry.")
    assert call.wait(call.settings.unfinished_wait_ms / 1000 - 0.2) == []
    [end] = call.wait(0.3)
    assert isinstance(end, EndTurn) and end.final.text == "Wait, sorry."


def test_a_short_interruption_waits_for_the_words_of_a_caller_who_went_on() -> None:
    """The caller goes on within the wait; their pause comes after its deadline, and whisper's
    words a moment later: the short interruption is not answered alone in between."""
    call = Call()
    call.agent()
    call.start()
    call.pause()
    call.final("Stop.")
    call.wait(0.4)
    call.start()  # the caller goes on
    call.wait(1.5)
    call.pause()
    assert call.wait(0.3) == []  # past the deadline, between the pause and the words
    [end] = call.final("What is the capital of France?")
    assert isinstance(end, EndTurn) and end.final.text == "Stop. What is the capital of France?"


def test_a_short_interruption_followed_by_a_noise_is_answered_alone() -> None:
    call = Call()
    call.agent()
    call.start()
    call.pause()
    call.final("Wait.")
    call.start()
    call.pause()
    [end] = call.final("")  # no words: a breath, a noise
    assert isinstance(end, EndTurn) and end.final.text == "Wait."


def waiting_on_tool(call: Call) -> Generation:
    """The agent said its holding phrase (all of it played) and waits on the calendar."""
    call.final("Please move my appointment to Friday.")
    answer = call.agent(text="", playing=True)
    answer.holding_said, answer.tools_since = True, call.clock.monotonic()
    return answer


def test_words_said_into_the_silence_of_a_tool_are_a_turn_answered_after_it() -> None:
    # the clinic's calls: "Friday, 1130." said again after "One moment, let me check." was held
    # as a barge-in, judged an aside, and lost; the calendar then refused the time the model had
    # guessed, and the agent asked for what the caller had just said
    call = Call()
    answer = waiting_on_tool(call)
    assert kinds(call.start(over_agent=False)) == ["HoldAudio"]  # the tool's answer waits for them
    call.pause()
    resume, end = call.final("Friday, 1130.")
    assert kinds([resume]) == ["ResumeAudio"] and call.current is answer
    assert isinstance(end, EndTurn) and end.awaited is answer and end.superseded is None
    assert end.final.text == "Friday, 1130."
    # a backchannel there is none; words that would interrupt the agent's speech interrupt no
    # silence: the tool's answer is heard first (the clinic's "Done: ..." was cut by "First,
    # that's four." said again into the silence), then they are answered
    for said, decided in [
        ("Mm-hmm.", ["ResumeAudio"]),
        ("Stop, wait.", ["ResumeAudio", "EndTurn"]),
        ("First, that's four.", ["ResumeAudio", "EndTurn"]),
    ]:
        other = Call()
        waiting = waiting_on_tool(other)
        other.start(over_agent=False)
        other.pause()
        assert kinds(other.final(said)) == decided, said
        assert other.current is waiting
    # nor by its length (speech.lasting)
    long = Call()
    waiting = waiting_on_tool(long)
    long.start(over_agent=False)
    assert kinds(long.lasting()) == ["ResumeAudio"] and long.current is waiting
    long.pause()
    [end] = long.final("On Friday at eleven thirty in the morning, if you have it, or else Monday.")
    assert isinstance(end, EndTurn) and end.awaited is waiting
    # over the agent's audio (or not known to be silence): an aside, as ever
    for over_agent in (True, None):
        playing = Call()
        waiting_on_tool(playing)
        playing.start(over_agent=over_agent)
        playing.pause()
        assert kinds(playing.final("Friday, 1130.")) == ["ResumeAudio"], over_agent
