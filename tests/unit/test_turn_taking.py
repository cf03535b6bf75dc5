"""The turn-taking and barge-in decisions, case by case as the README describes them: message
sequences in, decisions out, no bus, time stepped by hand."""

from __future__ import annotations

import pytest

from voxbus.actors.call.barge_in import BargeInJudge, HoldAudio, Interrupt, ResumeAudio
from voxbus.actors.call.generation import Generation, Kind
from voxbus.actors.call.turn_taking import (
    DropSpeculative,
    EndTurn,
    Prefill,
    StartSpeculative,
    TurnTaking,
    Withdraw,
)
from voxbus.clock import ManualClock
from voxbus.config import TurnSettings
from voxbus.schemas.events import (
    PlayoutHeld,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SttFinal,
    SttPartial,
    SttTentative,
)

C = "call-1"
AGENT_SAID = "The capital of France is Paris, a city on the Seine."


class Call:
    """One call's turn-taking, with the agent's current generation kept as the actor keeps it."""

    def __init__(self, **turn_settings: object) -> None:
        self.clock = ManualClock()
        self.settings = TurnSettings(**turn_settings)  # type: ignore[arg-type]
        judge = BargeInJudge(C, self.settings, self.settings.lexicon("en"), self.clock)
        self.turns = TurnTaking(judge, self.settings, self.clock)
        self.current: Generation | None = None
        self.gen = 0

    def agent(self, kind: Kind = "answer", text: str = AGENT_SAID, playing: bool = True) -> Generation:
        """The agent starts a generation; ``playing``: its first frame has been played."""
        self.gen += 1
        self.current = Generation.start(self.gen, 1, kind, 12, self.clock.monotonic())
        self.current.text = text
        if playing:
            self.current.timeline.marks["first_audio"] = self.clock.time()
        return self.current

    def run(self, decisions: list) -> list:  # type: ignore[type-arg]
        """What the actor does to its current generation for each decision."""
        for decision in decisions:
            if isinstance(decision, (Interrupt, DropSpeculative, Withdraw)):
                self.current = None
            elif isinstance(decision, StartSpeculative):
                self.agent(text="", playing=False).speculative = True
                assert self.current is not None
                self.current.user_text = decision.text
            elif isinstance(decision, EndTurn):
                self.current = decision.speculative or self.agent(text="", playing=False)
                self.current.speculative = False
        return decisions

    def start(self) -> list:  # type: ignore[type-arg]
        ts = self.clock.time()
        return self.run(self.turns.speech_started(SpeechStarted(call_id=C, at_ms=0, at_ts=ts), self.current))

    def pause(self) -> list:  # type: ignore[type-arg]
        return self.turns.speech_paused(SpeechPaused(call_id=C, at_ms=0, at_ts=self.clock.time()))

    def resume(self) -> list:  # type: ignore[type-arg]
        return self.run(self.turns.speech_resumed(SpeechResumed(call_id=C, at_ms=0), self.current))

    def end(self) -> list:  # type: ignore[type-arg]
        event = SpeechEnded(call_id=C, at_ms=0, decided_ms=0, at_ts=self.clock.time())
        return self.turns.speech_ended(event)

    def partial(self, text: str) -> list:  # type: ignore[type-arg]
        return self.run(self.turns.partial(SttPartial(call_id=C, text=text), self.current))

    def tentative(self, text: str) -> list:  # type: ignore[type-arg]
        event = SttTentative(call_id=C, text=text, compute_s=0.1)
        return self.run(self.turns.tentative(event, self.current))

    def final(self, text: str, end_reason: str = "complete") -> list:  # type: ignore[type-arg]
        event = SttFinal(call_id=C, text=text, start_ms=0, end_ms=0, compute_s=0.1, end_reason=end_reason)  # type: ignore[arg-type]
        return self.run(self.turns.final(event, self.current))

    def wait(self, seconds: float) -> list:  # type: ignore[type-arg]
        decisions = []
        for _ in range(round(seconds / 0.1)):
            self.clock.advance(0.1)
            decisions += self.run(self.turns.tick(self.current))
        return decisions


def kinds(decisions: list) -> list[str]:  # type: ignore[type-arg]
    return [type(d).__name__ for d in decisions]


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


def test_a_greeting_not_yet_heard_is_held_not_withdrawn() -> None:
    call = Call()
    call.agent(kind="greeting", playing=False)
    assert kinds(call.start()) == ["HoldAudio"]


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
    decisions = call.wait(call.settings.barge_in_min_speech_ms / 1000 + call.settings.pause_ms / 1000)
    [interrupt] = decisions
    assert isinstance(interrupt, Interrupt) and interrupt.event.reason.startswith("spoke over the agent")


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
