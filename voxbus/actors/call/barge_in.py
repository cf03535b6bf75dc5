"""Barge-in: caller speech over the agent, held and judged.

Two steps, because the caller must hear the agent stop within a few hundred milliseconds but a
backchannel can only be told from an interruption by its words, which whisper delivers only once
the caller pauses:

1. *hold*: speech over a generation that is playing holds its audio at the gateway;
2. *judge*: the caller's words (or speech that goes on without a pause for
   ``turn.barge_in_min_speech_ms``, which the STT worker counts on the caller audio's own clock
   and reports as ``speech.lasting``) interrupt the agent; a backchannel, a noise or the agent's own
   echo resume its audio where it stopped; a hold that stays undecided for ``turn.hold_max_ms``
   resumes too, and its words are still judged when they come (whisper, on a loaded machine, can
   take longer than the hold): an interruption then stops the agent, anything else is ignored
   rather than taken for a turn of its own that would cut the agent's answer off.

A fast path shortens the hold for a backchannel: over the agent, whisper hears the first
``stt.head_ms`` of the caller's speech at once (an ``stt.partial``), and if those first words are
a backchannel ("Yeah", "Okay") the agent resumes while the caller is still saying it. The hold's
words are then owed, as when a hold runs out: judged when they come (an interruption among them
still stops the agent), and speech that goes on without a pause still interrupts by its length.

:class:`BargeInJudge` does no I/O: it returns actions (:class:`HoldAudio`, :class:`ResumeAudio`,
:class:`Interrupt`), each carrying the ``barge_in`` event to publish, for the call actor to run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxbus.actors.call.generation import Generation
from voxbus.actors.turn_settings import TurnSettings
from voxbus.actors.turns import head_resumes, judge_barge_in
from voxbus.clock import Clock
from voxbus.lexicons import Lexicon
from voxbus.schemas.events import BargeIn, PlayoutHeld


@dataclass
class Barge:
    """Caller speech over a generation, being judged while its audio is held."""

    gen: int
    onset_ts: float  # capture time of the caller's first word over the agent (epoch s)
    started: float  # monotonic s: when the hold began
    held_ts: float | None = None  # when the gateway stopped playing
    played_ms: int | None = None  # how much of the generation had been played then
    resumed: float | None = None  # monotonic s: when the agent's audio resumed with no words judged
    on_head: bool = False  # resumed on its first words, a backchannel (the fast path)


@dataclass(frozen=True)
class HoldAudio:
    gen: int


@dataclass(frozen=True)
class ResumeAudio:
    gen: int
    event: BargeIn


@dataclass(frozen=True)
class Interrupt:
    generation: Generation
    event: BargeIn
    heard: str  # what the caller heard of it: all the history keeps


class Verdict(enum.Enum):
    INTERRUPT = "interrupt"  # the agent stops; the caller's words are a turn
    RESUME = "resume"  # the agent goes on; the caller's words are not a turn
    HOLD = "hold"  # not these words, but the caller speaks again: their next words are judged
    GONE = "gone"  # the generation ended before the words came: nothing to decide


BargeAction = HoldAudio | ResumeAudio | Interrupt
# The agent's own words can come back as echo only from the audio played just before the hold
# (the caller's phone returns it within a few hundred ms): a long answer's earlier words would make
# any question that shares a few common words with it look like echo. The margin allows for
# words being placed in a clause by proportion only.
ECHO_WINDOW_MS = 4000
ECHO_MARGIN_MS = 1000
HEAD_REASON = "a backchannel, on its first words"


class BargeInJudge:
    def __init__(self, call_id: str, turns: TurnSettings, lexicon: Lexicon, clock: Clock) -> None:
        self.call_id, self.turns, self.lexicon, self.clock = call_id, turns, lexicon, clock
        self.barge: Barge | None = None
        self.owed: Barge | None = None  # a hold that resumed before its words came

    @property
    def holding(self) -> bool:
        return self.barge is not None

    def hold(self, generation: Generation, onset_ts: float) -> HoldAudio:
        self.barge = Barge(gen=generation.gen, onset_ts=onset_ts, started=self.clock.monotonic())
        self.owed = None  # new speech over the agent: the words that come are this hold's
        return HoldAudio(generation.gen)

    def audio_held(self, event: PlayoutHeld) -> None:
        if self.barge is not None and event.gen == self.barge.gen:
            self.barge.held_ts, self.barge.played_ms = event.ts, event.played_ms

    def playout_ended(self, gen: int) -> None:
        """The generation played to its end before the caller's words were judged."""
        if self.barge is not None and self.barge.gen == gen:
            self.barge = None

    def judge(
        self, text: str | None, current: Generation | None, speaking: bool = False
    ) -> tuple[Verdict, list[BargeAction]]:
        """Decide the hold on the caller's words (None: on its length alone). ``speaking``: the
        caller has started speaking again since these words: words that would not interrupt do not
        resume the agent over them; the hold goes on and the next words are judged."""
        barge = self.barge
        assert barge is not None, "judge() without a hold"
        if current is None or current.gen != barge.gen:
            self.barge = None  # its generation ended meanwhile
            return Verdict.GONE, []
        if text is None:
            reason = f"spoke over the agent for {self.turns.barge_in_min_speech_ms} ms"
            return Verdict.INTERRUPT, [self._interrupt(current, reason, "")]
        why_not = self._why_not(text, current, barge.played_ms)
        if why_not is None:
            return Verdict.INTERRUPT, [self._interrupt(current, "words over the agent", text)]
        if speaking:  # resuming now would play the agent over the caller: judge what they say next
            barge.started = self.clock.monotonic()
            return Verdict.HOLD, []
        self.barge = None
        return Verdict.RESUME, [
            ResumeAudio(current.gen, self._event(barge, current, "ignored", why_not, text))
        ]

    def judge_head(self, text: str, current: Generation | None) -> list[BargeAction]:
        """The fast path: the first words of the caller's speech over the held agent, heard before
        the caller finished. A backchannel resumes the agent now; anything else waits for the
        whole words (the head of "Stop" may read as anything)."""
        barge = self.barge
        if barge is None or current is None or current.gen != barge.gen:
            return []
        if not head_resumes(text, self.lexicon):  # cut off: "uh," was the head of "Hold on"
            return []
        barge.on_head = True
        self._owe(barge)
        return [ResumeAudio(barge.gen, self._event(barge, current, "ignored", HEAD_REASON, text))]

    def _owe(self, barge: Barge) -> None:
        """Resume before the hold's words came: they are judged when they do (``judge_owed``),
        and speech that goes on still interrupts by its length (``spoke_on``)."""
        self.barge, self.owed = None, barge
        barge.resumed = self.clock.monotonic()

    def _reclaim(self, barge: Barge) -> None:
        """An owed hold becomes the hold being judged again, at what has played by now."""
        barge.played_ms, self.barge, self.owed = self._played(barge), barge, None

    def _played(self, barge: Barge) -> int | None:
        """How much of the generation has played by now: audio plays in real time since a resume."""
        played = barge.played_ms
        if played is not None and barge.resumed is not None:
            played += int((self.clock.monotonic() - barge.resumed) * 1000)
        return played

    def judge_owed(self, text: str, current: Generation | None) -> tuple[Verdict, list[BargeAction]]:
        """The words of a hold that resumed before they came: words that interrupt stop the agent
        now; anything else was rightly played over (the agent's audio goes on)."""
        if not text:
            return Verdict.GONE, []  # no words yet (they may follow)
        barge, self.owed = self.owed, None
        if barge is None or current is None or current.gen != barge.gen:
            return Verdict.GONE, []  # its generation ended meanwhile: the words are a turn as any
        # after first words that were a backchannel, one word more without a cue is still an aside:
        # whisper wrote an "Mm-hmm." whose head read "Mm." as "And then them." (twice in calls)
        aside_words = self.turns.barge_in_aside_words + (1 if barge.on_head else 0)
        why_not = self._why_not(text, current, self._played(barge), aside_words)
        if why_not is None:
            self._reclaim(barge)  # judged now, as if still held
            return Verdict.INTERRUPT, [self._interrupt(current, "words over the agent (late)", text)]
        ignored = self._event(barge, current, "ignored", why_not, text)
        return Verdict.RESUME, [ResumeAudio(current.gen, ignored)]  # resuming what plays: nothing

    def _why_not(
        self, text: str, current: Generation, played: int | None, aside_words: int | None = None
    ) -> str | None:
        """Why these words do not interrupt the agent, or None if they do."""
        agent_said = (
            current.text  # the gateway has not said where it held yet: any of it
            if played is None
            else current.words_played(played - ECHO_WINDOW_MS, played + ECHO_MARGIN_MS)
        )
        return judge_barge_in(
            text,
            agent_said,
            self.lexicon,
            self.turns.barge_in_min_words,
            self.turns.echo_overlap,
            self.turns.barge_in_aside_words if aside_words is None else aside_words,
        )

    def spoke_on(self, current: Generation | None) -> tuple[Verdict | None, list[BargeAction]]:
        """The caller has spoken over the agent without a pause for ``turn.barge_in_min_speech_ms``
        (``speech.lasting``, on the audio's clock: a string of short backchannels never is): the
        hold interrupts, or one that resumed on its first words (or ran out) is taken back."""
        if self.turns.barge_in_min_words:
            return None, []  # only words interrupt
        owed = self.owed
        if owed is not None and current is not None and current.gen == owed.gen:
            self._reclaim(owed)
        if self.barge is None:
            return None, []
        return self.judge(None, current)

    def due(self, current: Generation | None) -> tuple[Verdict | None, list[BargeAction]]:
        """The deadline of a hold: one that stays undecided (no words came) resumes."""
        barge = self.barge
        if barge is None:
            return None, []
        if (self.clock.monotonic() - barge.started) * 1000 > self.turns.hold_max_ms and current is not None:
            self._owe(barge)
            return Verdict.RESUME, [
                ResumeAudio(barge.gen, self._event(barge, current, "ignored", "no words came", ""))
            ]
        return None, []

    def _interrupt(self, generation: Generation, reason: str, text: str) -> Interrupt:
        barge = self.barge
        assert barge is not None
        self.barge = None
        heard = generation.heard(barge.played_ms)
        return Interrupt(generation, self._event(barge, generation, "interrupt", reason, text, heard), heard)

    def _event(
        self,
        barge: Barge,
        generation: Generation,
        decision: str,
        reason: str,
        text: str,
        heard: str | None = None,
    ) -> BargeIn:
        held = None if barge.held_ts is None else round((barge.held_ts - barge.onset_ts) * 1000, 1)
        return BargeIn(
            call_id=self.call_id,
            turn=generation.turn,
            gen=generation.gen,
            decision=decision,  # type: ignore[arg-type]
            reason=reason,
            text=text,
            onset_ts=barge.onset_ts,
            held_ms=held,
            played_ms=barge.played_ms,
            heard_text=heard,
            ts=self.clock.time(),
        )
