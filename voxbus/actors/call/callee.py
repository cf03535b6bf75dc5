"""The start of an outbound call: whoever answers is judged (:mod:`~voxbus.actors.call.answering`)
before the agent says a word, and the verdict carried out.

judging -> talking (a person: the agent greets them and the conversation begins, their "Hello?"
left unanswered) or waiting_for_beep (a machine) -> leaving (the voicemail is said, then the agent
hangs up; with no voicemail to leave, it hangs up at once). While judging and after it, the
callee's speech goes to the judge, not to turn-taking: an answering machine is never answered.
"""

from __future__ import annotations

from typing import Literal

from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.answering import AnsweringJudge
from voxbus.actors.call.outbound import Outbound
from voxbus.clock import Clock
from voxbus.schemas.events import (
    AnsweredBy,
    Event,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SttFinal,
    SttTentative,
    VoicemailLeft,
)
from voxbus.schemas.messages import CallControl

Stage = Literal["judging", "talking", "waiting_for_beep", "leaving"]


class Callee:
    def __init__(
        self, judge: AnsweringJudge, agent: AgentSide, out: Outbound, clock: Clock, voicemail: str
    ) -> None:
        self.judge, self.agent, self.out, self.clock, self.voicemail = judge, agent, out, clock, voicemail
        self.stage: Stage = "judging"
        self.spoke_since_verdict = False

    async def took(self, event: Event) -> bool:
        """Feed the event to the judge; True when it was the judge's (turn-taking must not see it)."""
        if self.stage == "talking":
            return self._greeting_of_a_person(event)
        now = self.clock.monotonic()
        match event:
            case SpeechStarted() | SpeechResumed():
                self.judge.speech_started(now)
            case SpeechPaused() | SpeechEnded():
                self.judge.speech_stopped(now, event.at_ms)
            case SttFinal() | SttTentative():
                self.judge.heard(event.text)
        await self.tick()
        return True

    def _greeting_of_a_person(self, event: Event) -> bool:
        """A person's "Hello?" was heard before the verdict: the agent's greeting answers it."""
        if isinstance(event, (SpeechStarted, SpeechResumed)):
            self.spoke_since_verdict = True
        if isinstance(event, SttTentative):
            return not self.spoke_since_verdict
        return isinstance(event, SttFinal) and self.judge.judged(event.end_ms)

    async def tick(self) -> None:
        now = self.clock.monotonic()
        if self.stage == "judging" and (verdict := self.judge.tick(now)) is not None:
            state = self.agent.state
            speech_ms = round(self.judge.speech_ms)
            self.out.emit(
                AnsweredBy(
                    call_id=self.out.call_id,
                    turn=state.turn,
                    answered_by=verdict,
                    reason=self.judge.reason,
                    speech_ms=speech_ms,
                )
            )
            if verdict == "human":
                self.stage = "talking"
                if self.agent.settings.greeting:
                    await self.agent.greet()
            else:
                self.stage = "waiting_for_beep"
        if self.stage == "waiting_for_beep" and self.judge.machine_finished(now):
            self.stage = "leaving"
            await self._leave_voicemail()

    async def _leave_voicemail(self) -> None:
        if not self.voicemail:
            await self.out.control("hangup")
            return
        await self.agent.say(self.voicemail)
        assert self.agent.current is not None
        self.agent.current.after_playout.append(CallControl(call_id=self.out.call_id, action="hangup"))
        self.out.emit(
            VoicemailLeft(call_id=self.out.call_id, turn=self.agent.state.turn, text=self.voicemail)
        )
