"""A call's turn-taking driven by hand for the unit tests: message sequences in, decisions out,
no bus, time stepped by a manual clock."""

from __future__ import annotations

from voxbus.actors.call.barge_in import BargeInJudge, Interrupt
from voxbus.actors.call.generation import Generation, Kind
from voxbus.actors.call.turn_taking import (
    DropSpeculative,
    EndTurn,
    StartSpeculative,
    TurnTaking,
    Withdraw,
)
from voxbus.actors.turn_settings import TurnSettings
from voxbus.clock import ManualClock
from voxbus.schemas.events import (
    SpeechEnded,
    SpeechLasting,
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
        if playing:  # for a while: the caller's speech from now on can be a reaction to it
            self.current.timeline.marks["first_audio"] = self.clock.time() - 2.0
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
            elif isinstance(decision, EndTurn) and decision.awaited is None:  # (else answered later)
                self.current = decision.speculative or self.agent(text="", playing=False)
                self.current.speculative = False
        return decisions

    def start(self, over_agent: bool | None = None) -> list:  # type: ignore[type-arg]
        """The caller starts speaking; ``over_agent``: whether the agent's audio was on the line."""
        event = SpeechStarted(call_id=C, at_ms=0, at_ts=self.clock.time(), over_agent=over_agent)
        return self.run(self.turns.speech_started(event, self.current))

    def pause(self) -> list:  # type: ignore[type-arg]
        return self.turns.speech_paused(SpeechPaused(call_id=C, at_ms=0, at_ts=self.clock.time()))

    def resume(self) -> list:  # type: ignore[type-arg]
        return self.run(self.turns.speech_resumed(SpeechResumed(call_id=C, at_ms=0), self.current))

    def lasting(self) -> list:  # type: ignore[type-arg]
        """The STT worker: the caller spoke turn.barge_in_min_speech_ms over the agent, no pause."""
        event = SpeechLasting(call_id=C, at_ms=0, lasted_ms=self.settings.barge_in_min_speech_ms)
        return self.run(self.turns.speech_lasting(event, self.current))

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
