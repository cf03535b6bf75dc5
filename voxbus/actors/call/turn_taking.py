"""Turn-taking: who has the floor, and when the caller's turn is over.

:class:`TurnTaking` takes the caller's side of the call (speech started, paused, resumed and
ended, tentative and final transcripts, key presses, the passing of time) and returns decisions
for the call actor to carry out. It does no I/O and reads time only from its injected clock, so
that every case is a unit test and a recorded call replays the same.

What it keeps, and why:

- ``carried``: words of a turn that turned out not to be over (an answer withdrawn unheard because
  the caller went on, or a short interruption waiting for more): they join the next turn;
- ``follow_up``: a short interruption ("Stop.", "Wait, sorry.") waiting ``turn.unfinished_wait_ms``
  for the caller to say more before it is answered alone; once the caller speaks again it waits
  for their words, however long whisper takes;
- ``interrupted``: the caller's latest words interrupted the agent (so a short final waits);
- ``words_ignored``: the caller's current words over the agent were judged not to interrupt (a
  backchannel, an aside): their final is not a turn while the agent still speaks, and a
  backchannel's is not one after it either (an aside's is: answered once the agent is done);
- nothing for partial transcripts: each becomes a :class:`Prefill` (the LLM evaluates the words so
  far) while the caller speaks to a silent agent;
- ``caller_speaking``, ``last_pause``, ``speech_end``: the VAD's view, for deadlines and metrics;
- the :class:`~voxbus.actors.call.barge_in.BargeInJudge` for speech over the agent.

The agent's side is the current :class:`~voxbus.actors.call.generation.Generation`, passed in by
the call actor with each event: none, speculative (thinking on an open turn), answering (nothing
heard yet: withdrawable), or speaking (held and judged on barge-in).
"""

from __future__ import annotations

from dataclasses import dataclass

from voxbus.actors.call.barge_in import BargeAction, BargeInJudge, HoldAudio, Interrupt, ResumeAudio, Verdict
from voxbus.actors.call.generation import Generation
from voxbus.actors.turn_settings import TurnSettings
from voxbus.actors.turns import is_backchannel, words
from voxbus.clock import Clock
from voxbus.schemas.events import (
    PlayoutHeld,
    SpeechEnded,
    SpeechLasting,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SttFinal,
    SttPartial,
    SttTentative,
)

SHORT_INTERRUPTION_WORDS = 3  # "Stop.", "Wait, sorry.": more is coming, most likely
PREFILL_MIN_WORDS = 3  # fewer words save the LLM too little to be worth evaluating ahead


@dataclass(frozen=True)
class DropSpeculative:
    """The caller went on: the answer started on their unfinished words goes without a trace."""

    generation: Generation


@dataclass(frozen=True)
class Withdraw:
    """The caller went on before hearing a word of the answer (or before they could react to its
    first: ``Generation.answered_by``): the turn was not over after all. The answer and the
    caller's turn leave the history; the words join the next turn."""

    generation: Generation


@dataclass(frozen=True)
class StartSpeculative:
    """The caller paused mid-phrase: think about these words already, speak only once the turn ends."""

    text: str


@dataclass(frozen=True)
class Prefill:
    """The caller is still speaking: have the LLM evaluate their words so far, so that when the turn
    ends only its last words are left to evaluate. Nothing is generated or said."""

    text: str


@dataclass(frozen=True)
class EndTurn:
    """The caller's turn is over with these words (``final.text``): answer it."""

    final: SttFinal
    arrived: float  # when the final reached the call actor (epoch s)
    speech_end_ts: float | None  # capture time of the end of the caller's speech
    vad_decision_ts: float | None  # when the VAD decided the pause that ended it
    speculative: Generation | None  # an answer already started on exactly these words: it goes out
    superseded: Generation | None  # a generation the new turn replaces
    # a generation the turn waits for: the caller began it in the silence while that one waited on
    # a tool (``Generation.waits_on_tool``); it is answered once the tool's answer has been said
    awaited: Generation | None = None


Decision = BargeAction | DropSpeculative | Withdraw | StartSpeculative | Prefill | EndTurn
__all__ = ["Decision", "DropSpeculative", "EndTurn", "HoldAudio", "Interrupt", "Prefill", "ResumeAudio"]


class TurnTaking:
    def __init__(self, barge_in: BargeInJudge, turns: TurnSettings, clock: Clock) -> None:
        self.barge_in, self.turns, self.clock = barge_in, turns, clock
        self.caller_speaking = False
        self.last_pause: SpeechPaused | None = None
        self.speech_end: SpeechEnded | None = None
        self.carried = ""
        # (the words, monotonic deadline; None once the caller goes on)
        self.follow_up: tuple[SttFinal, float | None] | None = None
        self.interrupted = False
        self.words_ignored = False
        # the hold began too soon after the answer's first frame to be a reaction to it: if the
        # speech is judged the caller's (not the answer's echo), they went on with their turn
        self.going_on = False
        self.spoke_on_hold: int | None = None  # the generation on hold when this turn began

    # --- the caller's voice (VAD) ---------------------------------------------------------------
    def speech_started(self, event: SpeechStarted, current: Generation | None) -> list[Decision]:
        self.caller_speaking = True
        # into the silence while the agent waits on a tool (after its holding phrase, say): the
        # agent's audio is held as for any speech (the tool's answer must not start over them),
        # and their words, unless a backchannel, are a turn answered after the tool's answer:
        # they interrupt nothing (``_unless_on_hold``) and are no aside to drop (``_said_on_hold``)
        self.spoke_on_hold = None
        if current is not None and not current.speculative and current.waits_on_tool:
            self.spoke_on_hold = current.gen if event.over_agent is False else None
        self._going_on()
        return self._speech_over(event.at_ts or event.ts, current)

    def speech_paused(self, event: SpeechPaused) -> list[Decision]:
        self.last_pause = event
        self.caller_speaking = False
        return []

    def speech_resumed(self, event: SpeechResumed, current: Generation | None) -> list[Decision]:
        self.caller_speaking = True
        self._going_on()
        if current is not None and current.speculative:
            return [DropSpeculative(current)]
        return self._speech_over(event.ts, current)

    def speech_lasting(self, _event: SpeechLasting, current: Generation | None) -> list[Decision]:
        """The caller has spoken over the agent long enough without a pause to interrupt it."""
        verdict, actions = self.barge_in.spoke_on(current)
        return self._decided(verdict, actions)

    def speech_ended(self, event: SpeechEnded) -> list[Decision]:
        self.speech_end = event
        self.caller_speaking = False
        return []

    def _going_on(self) -> None:
        """The caller speaks again after a short interruption: its wait is over, their words
        (whenever whisper delivers them) join it."""
        if self.follow_up is not None:
            self.follow_up = (self.follow_up[0], None)

    def _speech_over(self, onset_ts: float, current: Generation | None) -> list[Decision]:
        """The caller speaks while the agent speaks or is about to."""
        self.words_ignored = False
        if current is None or current.speculative or self.barge_in.holding:
            return []
        if current.kind == "answer" and not current.heard_any:
            return self._withdraw(current)  # not a frame of it played: no echo of it either
        # a frame was: this may be its echo (judged on its words, as any barge-in), or the caller
        # going on with their turn, too soon after it began to be answering it (withdrawn then)
        self.going_on = current.kind == "answer" and not current.answered_by(onset_ts)
        return [self.barge_in.hold(current, onset_ts)]

    def _withdraw(self, generation: Generation) -> list[Decision]:
        self.carried = f"{self.carried} {generation.user_text}".strip()
        return [Withdraw(generation)]

    def _decided(self, verdict: Verdict | None, actions: list[BargeAction]) -> list[Decision]:
        """A hold judged. One that began too soon after the answer began to be a reaction to it
        and is judged an interruption is the caller going on with their turn: the answer is
        withdrawn (the caller's words so far begin the next turn), not cut as an interruption.
        One that began in the silence of a tool interrupts nothing: the tool's answer is heard,
        then the caller's words are answered (the clinic's "Done: your appointment is now on
        Thursday at 4 PM." was cut by the caller's "First, that's four." said into the silence)."""
        verdict, actions = self._unless_on_hold(verdict, actions)
        if verdict is not None:
            going_on, self.going_on = self.going_on, False
            if going_on and verdict is Verdict.INTERRUPT:
                return [
                    d
                    for a in actions
                    for d in (self._withdraw(a.generation) if isinstance(a, Interrupt) else [a])
                ]
        self._note(verdict)
        return list(actions)

    def playout_held(self, event: PlayoutHeld) -> list[Decision]:
        self.barge_in.audio_held(event)
        return []

    def playout_ended(self, gen: int) -> list[Decision]:
        self.barge_in.playout_ended(gen)
        return []

    # --- the caller's words (STT) ---------------------------------------------------------------
    def partial(self, event: SttPartial, current: Generation | None) -> list[Decision]:
        """Words of a turn still being spoken: over the held agent, the first words of a barge-in
        (a backchannel resumes it at once); else evaluated ahead by the LLM, but only while the
        agent is silent and thinking of nothing (a speculative answer has its own words)."""
        if self.barge_in.holding:
            return list(self.barge_in.judge_head(event.text, current))
        if current is not None or not self.caller_speaking:
            return []
        text = f"{self.carried} {event.text.strip()}".strip()
        return [Prefill(text)] if len(words(text)) >= PREFILL_MIN_WORDS else []

    def tentative(self, event: SttTentative, current: Generation | None) -> list[Decision]:
        text = f"{self.carried} {event.text.strip()}".strip()
        decisions: list[Decision] = []
        verdict = self._judge(text, current, decisions)
        if verdict is Verdict.INTERRUPT:
            current = None
        elif verdict is not None:
            return decisions  # a backchannel, a noise or an echo over the agent (which goes on)
        if current is not None and current.speculative:
            decisions.append(DropSpeculative(current))
            current = None
        if current is None and text:
            decisions.append(StartSpeculative(text))
        return decisions

    def final(self, event: SttFinal, current: Generation | None) -> list[Decision]:
        waiting, self.follow_up = self.follow_up, None  # a short interruption: these words join it
        text = event.text.strip()
        if not text and waiting is not None:  # what followed it had no words: it is answered alone
            event, self.carried = waiting[0], ""
            text = event.text.strip()
        arrived = self.clock.time()
        decisions: list[Decision] = []
        verdict = self._judge(text, current, decisions)
        if verdict is Verdict.INTERRUPT:
            current = None
        elif verdict is not None:  # not an interruption: the agent's audio goes on
            return decisions + self._said_on_hold(event, text, arrived, current)
        if self.carried and text:  # (words withdrawn just now, the caller going on, included)
            text, self.carried = f"{self.carried} {text}", ""
            event = event.model_copy(update={"text": text})
        if self.words_ignored and (current is not None or is_backchannel(text, self.barge_in.lexicon)):
            # the end of words already judged not to interrupt the agent: not a turn while it
            # speaks, and a backchannel never (an "Mm-hmm." whose final came just after the answer
            # ended was answered "I see. Is there anything else you need?")
            self.words_ignored = False
            return decisions + self._said_on_hold(event, text, arrived, current)
        if not text:
            return decisions
        interrupted, self.interrupted = self.interrupted, False
        if interrupted and len(words(text)) <= SHORT_INTERRUPTION_WORDS:
            # "Stop." or "Wait, sorry.": the caller cut in to say something; listen before answering
            self.carried = text
            self.follow_up = (event, self.clock.monotonic() + self.turns.unfinished_wait_ms / 1000)
            return decisions
        decisions.append(self._end_turn(event, text, arrived, current))
        return decisions

    def key_pressed(self, final: SttFinal, current: Generation | None) -> list[Decision]:
        """A key press is a turn of its own, with no speech to measure its latency from."""
        self.speech_end = None
        return self.final(final, current)

    def _said_on_hold(
        self, event: SttFinal, text: str, arrived: float, current: Generation | None
    ) -> list[Decision]:
        """Words said into the silence of a tool that did not interrupt it: a turn answered once
        the agent is done (a backchannel is none, there as anywhere)."""
        if current is None or self.spoke_on_hold != current.gen or not text:
            return []
        if is_backchannel(text, self.barge_in.lexicon):
            return []
        return [self._end_turn(event, text, arrived, current, awaited=True)]

    def _end_turn(
        self, event: SttFinal, text: str, arrived: float, current: Generation | None, awaited: bool = False
    ) -> EndTurn:
        self.spoke_on_hold = None
        speculative = (
            current if current is not None and current.speculative and current.user_text == text else None
        )
        superseded = current if speculative is None and not awaited else None
        speech_end_ts = vad_decision_ts = None
        if self.speech_end is not None:
            speech_end_ts = self.speech_end.at_ts
            decided = self.last_pause if event.end_reason == "complete" else self.speech_end
            vad_decision_ts = decided.ts if decided is not None else self.speech_end.ts
        waited_for = current if awaited else None
        return EndTurn(event, arrived, speech_end_ts, vad_decision_ts, speculative, superseded, waited_for)

    def _judge(self, text: str, current: Generation | None, decisions: list[Decision]) -> Verdict | None:
        """The caller's words over the agent: those of the hold, or of one that resumed before
        they came. None: no words were awaited (or the generation they were owed to is over)."""
        if self.barge_in.holding:
            verdict, actions = self.barge_in.judge(text, current, speaking=self.caller_speaking)
        elif self.barge_in.owed is not None:
            verdict, actions = self.barge_in.judge_owed(text, current)
            if verdict is Verdict.GONE:
                return None  # words after the agent's answer: a turn as any
        else:
            return None
        verdict, actions = self._unless_on_hold(verdict, actions)
        decisions.extend(self._decided(verdict, actions))
        return verdict

    def _unless_on_hold(
        self, verdict: Verdict | None, actions: list[BargeAction]
    ) -> tuple[Verdict | None, list[BargeAction]]:
        if verdict is Verdict.INTERRUPT and self.spoke_on_hold is not None:
            return Verdict.RESUME, [self._resumed_instead(a) for a in actions]
        return verdict, actions

    def _resumed_instead(self, action: BargeAction) -> BargeAction:
        if not isinstance(action, Interrupt) or action.generation.gen != self.spoke_on_hold:
            return action
        reason = "said into the silence of a tool: answered after its answer"
        event = action.event.model_copy(update={"decision": "ignored", "reason": reason})
        return ResumeAudio(action.generation.gen, event)

    def _note(self, verdict: Verdict | None) -> None:
        if verdict is Verdict.INTERRUPT:
            self.interrupted = True
        elif verdict in (Verdict.RESUME, Verdict.HOLD):
            self.words_ignored = True

    # --- time -------------------------------------------------------------------------------------
    def tick(self, current: Generation | None) -> list[Decision]:
        """Deadlines: a held barge-in whose hold runs out, and a short interruption the caller did
        not follow up (answered after all)."""
        verdict, actions = self.barge_in.due(current)  # a resume: the generation goes on
        decisions: list[Decision] = self._decided(verdict, actions)
        if self.follow_up is not None and not self.caller_speaking:
            event, deadline = self.follow_up
            if deadline is not None and self.clock.monotonic() >= deadline:
                self.follow_up, self.carried = None, ""
                decisions += self.final(event, current)
        return decisions
