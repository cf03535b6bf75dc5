"""The barge-in decisions (caller speech over the agent: held, then judged), case by case as the
README describes them."""

from __future__ import annotations

import pytest

from voxbus.actors.call.barge_in import HEAD_REASON, HoldAudio, Interrupt, ResumeAudio
from voxbus.actors.call.turn_taking import EndTurn
from voxbus.schemas.events import PlayoutHeld, SpeechStarted

from .turn_calls import C, Call, kinds


def test_backchannel_resumes_the_agent_and_is_not_a_turn() -> None:
    call = Call()
    speaking = call.agent()
    [hold] = call.start()
    assert hold == HoldAudio(speaking.gen)
    call.pause()
    [resume] = call.final("Uh-huh.")
    assert isinstance(resume, ResumeAudio) and resume.event.decision == "ignored"
    assert resume.event.reason == "a backchannel" and call.current is speaking


def test_backchannel_judged_on_its_tentative_words_ends_without_a_turn() -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    assert kinds(call.tentative("Yeah, okay")) == ["ResumeAudio"]
    assert call.final("Yeah, okay.") == []  # the end of words already judged: not a turn
    assert call.current is speaking


def test_a_backchannel_whose_words_end_after_the_answer_is_still_not_a_turn() -> None:
    # latency bench: "Mm-hmm." over an answer, judged on its tentative words; the answer ended
    # before the final came, which was taken for a turn ("I see. Is there anything else you need?")
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    assert kinds(call.tentative("Mm-hmm")) == ["ResumeAudio"]
    call.turns.playout_ended(speaking.gen)
    call.current = None
    assert call.final("Mm-hmm.") == []


def test_an_aside_whose_words_end_after_the_answer_is_answered() -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    [resume] = call.tentative("Which day")
    assert isinstance(resume, ResumeAudio) and "an aside" in resume.event.reason
    call.turns.playout_ended(speaking.gen)
    call.current = None
    [end] = call.final("Which day?")
    assert isinstance(end, EndTurn) and end.final.text == "Which day?"


@pytest.mark.parametrize(
    ("words", "reason"),
    [("", "no words (a noise or a cough)"), ("capital of France is Paris", "the agent's own voice (echo)")],
)
def test_cough_and_echo_resume_the_agent(words: str, reason: str) -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    [resume] = call.final(words)
    assert isinstance(resume, ResumeAudio) and resume.event.reason == reason and call.current is speaking


def test_echo_is_judged_on_what_was_played_just_before_the_hold() -> None:
    """A question over a long answer is not taken for echo because the answer, long ago, used
    the same common words; the words played just before the hold are."""
    call = Call()
    story = "Once upon a time there was a knight. That is the way of the story. " * 8
    speaking = call.agent(text=story)
    clauses = [
        *(["Once upon a time there was a knight.", "That is the way of the story."] * 8),
        "The dragon slept.",
    ]
    speaking.clause_texts = dict(enumerate(clauses))
    speaking.clause_frames = dict.fromkeys(range(len(clauses)), 300)  # 6 s a clause
    call.start()
    call.turns.playout_held(PlayoutHeld(call_id=C, gen=speaking.gen, played_ms=99_000))  # in "The dragon..."
    call.pause()
    assert kinds(call.final("That is the capital of France.")) == ["Interrupt", "EndTurn"]
    call.agent(text=story).clause_texts = dict(enumerate(clauses))
    call.current.clause_frames = dict.fromkeys(range(len(clauses)), 300)  # type: ignore[union-attr]
    call.start()
    call.turns.playout_held(PlayoutHeld(call_id=C, gen=call.gen, played_ms=99_000))
    call.pause()
    [resume] = call.final("The dragon slept.")
    assert isinstance(resume, ResumeAudio) and resume.event.reason == "the agent's own voice (echo)"


def test_a_cut_in_cue_interrupts_even_when_the_agent_just_said_the_word() -> None:
    call = Call()
    speaking = call.agent(text="The bus would not stop at the station, so we walked.")
    call.start()
    call.pause()
    [interrupt] = call.final("Stop, stop.")  # a short cut-in: answered once they go on
    assert isinstance(interrupt, Interrupt) and interrupt.generation is speaking
    call = Call()
    call.agent(text="The bus would not stop at the station, so we walked.")
    call.start()
    call.pause()
    [resume] = call.final("would not stop")  # its echo does not start with the cue
    assert isinstance(resume, ResumeAudio) and resume.event.reason == "the agent's own voice (echo)"


def test_a_cue_after_fillers_still_cuts_in() -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    [interrupt] = call.final("Uh, uh, wait.")  # whisper's soft "Wait." over a phone line
    assert isinstance(interrupt, Interrupt) and interrupt.generation is speaking


@pytest.mark.parametrize("heard", ["Top.", "Up.", "Uh, top."])
def test_stop_as_a_phone_line_loses_its_s_still_cuts_in(heard: str) -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    [interrupt] = call.final(heard)
    assert isinstance(interrupt, Interrupt) and interrupt.generation is speaking


def test_a_misheard_cue_in_the_agents_own_echo_does_not_cut_in() -> None:
    call = Call()
    call.agent(text="Up to three people can come to the tasting, so bring your friends.")
    call.start()
    call.pause()
    [resume] = call.final("Up to three.")
    assert isinstance(resume, ResumeAudio) and resume.event.reason == "the agent's own voice (echo)"


def test_words_that_do_not_interrupt_do_not_resume_the_agent_over_the_caller_speaking_again() -> None:
    """ "Uh-huh" judged while the caller is already saying more: the hold goes on, and what they say
    next decides (the agent is never resumed over the caller)."""
    call = Call()
    speaking = call.agent()
    call.start()
    call.pause()
    call.resume()  # the caller goes on before the backchannel's words are judged
    assert call.final("Uh-huh.") == []  # no ResumeAudio: the hold goes on
    assert call.turns.barge_in.holding and call.current is speaking
    call.pause()
    assert kinds(call.final("Can you book me in for Tuesday?")) == ["Interrupt", "EndTurn"]


def test_words_over_the_agent_interrupt_it_and_the_history_keeps_what_was_heard() -> None:
    call = Call()
    speaking = call.agent(text="Paris is the capital. It lies on the Seine river.")
    speaking.clause_texts = {0: "Paris is the capital.", 1: "It lies on the Seine river."}
    speaking.clause_frames = {0: 50, 1: 60}
    call.start()
    call.turns.playout_held(PlayoutHeld(call_id=C, gen=speaking.gen, played_ms=80 * 20))
    call.pause()
    interrupt, end = call.final("What about the weather in Lyon today?")
    assert isinstance(interrupt, Interrupt) and interrupt.generation is speaking
    assert interrupt.heard == "Paris is the capital. It lies on"
    assert interrupt.event.decision == "interrupt" and interrupt.event.played_ms == 1600
    assert isinstance(end, EndTurn) and end.superseded is None  # the interrupted answer is gone already


def test_speech_that_goes_on_interrupts_by_its_length() -> None:
    call = Call()
    call.agent()
    call.start()
    assert call.wait(2.0) == []  # the wall clock alone: the length is the audio's (speech.lasting)
    [interrupt] = call.lasting()
    assert isinstance(interrupt, Interrupt) and interrupt.event.reason.startswith("spoke over the agent")


def test_length_alone_does_not_interrupt_where_words_are_required_or_nothing_is_held() -> None:
    call = Call(barge_in_min_words=1)
    call.agent()
    call.start()
    assert call.lasting() == []
    idle = Call()
    idle.start()  # the agent silent: the caller's own turn, however long
    assert idle.lasting() == []


def test_a_pause_stops_the_length_rule_and_a_hold_with_no_words_resumes() -> None:
    call = Call()
    call.agent()
    call.start()
    call.pause()
    decisions = call.wait(call.settings.hold_max_ms / 1000 + 0.2)
    [resume] = decisions
    assert isinstance(resume, ResumeAudio) and resume.event.reason == "no words came"


def held_until_no_words_came(call: Call, played_ms: int = 1000) -> None:
    """A backchannel over the agent whose words come only after its hold ran out (a slow whisper)."""
    call.agent()
    call.start()
    call.turns.playout_held(PlayoutHeld(call_id=C, gen=call.gen, played_ms=played_ms))
    call.pause()
    [resume] = call.wait(call.settings.hold_max_ms / 1000 + 0.2)
    assert isinstance(resume, ResumeAudio) and resume.event.reason == "no words came"
    call.end()


def test_a_backchannels_late_words_are_still_not_a_turn() -> None:
    # under load the final "oui." came after the hold had resumed the agent: it was taken for a
    # turn, and the answer the caller was listening to was cut off by an answer to "oui."
    call = Call()
    held_until_no_words_came(call)
    [ignored] = call.final("Uh-huh.")
    assert isinstance(ignored, ResumeAudio) and ignored.event.decision == "ignored"
    assert call.current is not None and call.current.gen == 1  # the answer goes on
    call.start()  # the caller's next words over the agent are judged as any
    call.pause()
    assert kinds(call.final("Wait, can you say the time again?")) == ["Interrupt", "EndTurn"]


def test_an_interruptions_late_words_stop_the_agent() -> None:
    call = Call()
    held_until_no_words_came(call, played_ms=1000)
    interrupt, end = call.final("No, I meant next Tuesday instead.")
    assert isinstance(interrupt, Interrupt) and interrupt.event.reason == "words over the agent (late)"
    assert isinstance(end, EndTurn) and end.final.text == "No, I meant next Tuesday instead."
    # the agent had played on since the hold: 1000 ms, then the hold's 4 s, then the wait here
    assert interrupt.event.played_ms is not None and interrupt.event.played_ms > 1000


def test_late_words_after_the_answer_ended_are_a_turn() -> None:
    call = Call()
    held_until_no_words_came(call)
    call.current = None  # the answer played to its end
    [end] = call.final("Could you repeat the time?")
    assert isinstance(end, EndTurn) and end.final.text == "Could you repeat the time?"


def test_min_words_makes_a_one_word_interruption_resume_but_not_a_cue_to_stop() -> None:
    call = Call(barge_in_min_words=2)
    call.agent()
    call.start()
    call.pause()
    [resume] = call.final("Monday.")
    assert isinstance(resume, ResumeAudio) and resume.event.reason.startswith("1 words")
    call.start()
    call.pause()
    assert isinstance(call.final("Stop.")[0], Interrupt)


def test_two_words_without_a_cue_are_an_aside_and_three_interrupt() -> None:
    call = Call()
    call.agent()
    call.start()
    call.pause()
    [resume] = call.final("Bye, bye.")  # whisper's "I see" over a phone line
    assert isinstance(resume, ResumeAudio) and "an aside" in resume.event.reason
    call.start()
    call.pause()
    assert isinstance(call.final("What about Monday?")[0], Interrupt)


def test_a_stutter_counts_as_one_word() -> None:
    call = Call(barge_in_min_words=2)
    call.agent()
    call.start()
    call.pause()
    [resume] = call.final("Ré-ré-ré-ré...")  # "oui, oui, oui" as whisper heard it over a loaded line
    assert isinstance(resume, ResumeAudio) and resume.event.reason.startswith("1 words")


def test_the_agent_finishing_ends_the_hold() -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    call.turns.playout_ended(speaking.gen)
    call.current = None
    call.pause()
    [end] = call.final("Thanks, that's all.")
    assert isinstance(end, EndTurn)


def test_a_backchannel_does_not_hold_the_agent_once_judged_by_the_fast_path() -> None:
    call = Call()
    speaking = call.agent()
    call.start()
    [resume] = call.partial("Yeah.")  # its first words, heard while the caller still says it
    assert isinstance(resume, ResumeAudio) and resume.gen == speaking.gen
    assert resume.event.decision == "ignored" and resume.event.reason == HEAD_REASON
    call.pause()
    call.end()
    assert [d for d in call.final("Yeah, okay.") if not isinstance(d, ResumeAudio)] == []  # not a turn
    assert call.current is speaking and call.wait(1.0) == []


def test_first_words_that_are_not_a_backchannel_wait_for_the_whole_words() -> None:
    for head in ("Sorry,", "St", "", "Top."):
        call = Call()
        call.agent()
        call.start()
        assert call.partial(head) == []  # still held
        call.pause()
        assert kinds(call.final("Sorry, stop.")) == ["Interrupt"]


def test_first_words_heard_cut_off_wait_for_the_whole_words() -> None:
    # whisper's heads of "Hold on" and "Stop." in bench/turn_taking.py runs: more was coming
    for head in ("uh,", "Uh...", "uh.", "Okay,", "Yeah…"):
        call = Call()
        call.agent()
        call.start()
        assert call.partial(head) == [], head  # still held
        call.pause()
        assert kinds(call.final("Uh, hold on.")) == ["Interrupt"], head


def test_a_hums_first_sound_resumes_the_agent_however_it_trails_and_words_after_it_still_stop_it() -> None:
    for head in ("M-M-", "Mm...", "hmm,"):
        call = Call()
        call.agent()
        call.start()
        assert kinds(call.partial(head)) == ["ResumeAudio"], head
        call.pause()
        assert kinds(call.final("Mm, hold on.")) == ["Interrupt"], head  # words over the agent (late)


def test_an_interruption_behind_a_backchannels_first_words_still_stops_the_agent() -> None:
    call = Call()
    call.agent()
    call.start()
    call.turns.playout_held(PlayoutHeld(call_id=C, gen=call.gen, played_ms=1000))
    assert kinds(call.partial("Uh.")) == ["ResumeAudio"]
    call.wait(0.3)
    call.pause()
    [interrupt] = call.final("Uh, wait.")
    assert isinstance(interrupt, Interrupt) and interrupt.event.reason == "words over the agent (late)"
    assert interrupt.event.played_ms == 1300  # the agent played on from the resume


def test_a_backchannel_whose_first_words_came_late_is_not_taken_for_long_speech() -> None:
    # CI, a loaded machine: "Yeah, okay." (0.9 s) over the agent; the STT worker ran 0.3-0.7 s
    # behind, its head "Yeah." resumed the agent 0.7 s after the onset and its pause came 1.4 s
    # after it: counted from the onset on the wall clock, 1.2 s of speech and an interruption (the
    # length is now the STT worker's, on the audio's clock: 0.9 s, no speech.lasting)
    call = Call()
    call.agent()
    call.start()
    assert call.wait(0.7) == []
    assert kinds(call.partial("Yeah.")) == ["ResumeAudio"]
    assert call.wait(0.7) == []  # 1.4 s since the onset, 0.7 s since the resume
    call.pause()
    assert [d for d in call.final("Yeah, okay.") if not isinstance(d, ResumeAudio)] == []
    assert call.current is not None  # the agent speaks on


def test_a_backchannel_reported_late_is_not_taken_for_long_speech() -> None:
    # the STT worker 0.5 s behind: the onset and the pause both reach the call actor that late
    call = Call()
    call.agent()
    onset = SpeechStarted(call_id=C, at_ms=0, at_ts=call.clock.time() - 0.5)
    assert kinds(call.run(call.turns.speech_started(onset, call.current))) == ["HoldAudio"]
    assert call.wait(1.2) == []  # 1.7 s after the onset's capture: only 1.2 s after its report
    call.pause()
    assert [d for d in call.final("Yeah, okay.") if not isinstance(d, ResumeAudio)] == []
    assert call.current is not None


def test_speech_going_on_after_a_fast_resume_interrupts_by_its_length() -> None:
    call = Call()
    call.agent()
    call.start()
    assert kinds(call.partial("Okay.")) == ["ResumeAudio"]
    [interrupt] = call.lasting()
    assert isinstance(interrupt, Interrupt) and interrupt.event.reason.startswith("spoke over the agent")


def resumed_on_its_head(head: str) -> Call:
    """The agent, held 1 s into its answer, resumed on the caller's first words; the caller paused."""
    call = Call()
    call.agent()
    call.start()
    call.turns.playout_held(PlayoutHeld(call_id=C, gen=call.gen, played_ms=1000))
    assert kinds(call.partial(head)) == ["ResumeAudio"]
    call.pause()
    return call


def test_three_words_without_a_cue_after_a_backchannels_first_words_are_an_aside() -> None:
    # "Mm-hmm." whose head read "Mm." (the agent resumed), its whole words "And then them."
    call = resumed_on_its_head("Mm.")
    [ignored] = call.final("And then them.")
    assert isinstance(ignored, ResumeAudio) and "aside" in ignored.event.reason
    assert call.current is not None  # the agent speaks on
    # more words, or a cue, still stop it
    for words in ("And then I need Friday instead.", "Mm, hold on."):
        assert isinstance(resumed_on_its_head("Mm.").final(words)[0], Interrupt), words
