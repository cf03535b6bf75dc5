"""Who answered an outbound call, without a bus: a short hello then silence is a person, a long
greeting or a machine's words is a machine, silence is a person waiting; a person's hello is not
answered twice; a machine gets the voicemail after its beep, then the agent hangs up."""

from __future__ import annotations

from typing import Any

from tests.unit.test_tool_flow import FakeOut, FakeStore
from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.answering import AnsweringJudge
from voxbus.actors.call.callee import Callee
from voxbus.actors.call.conversation import Conversation
from voxbus.clock import ManualClock
from voxbus.config import AgentSettings
from voxbus.schemas.events import AnsweredBy, SpeechEnded, SpeechStarted, SttFinal, VoicemailLeft
from voxbus.schemas.messages import CallControl, CallState

SETTINGS = AgentSettings(greeting="Hello, this is Bright Smile dental.")
VOICEMAIL = "This is Bright Smile dental: your cleaning is tomorrow at 10:30. Goodbye."


def judge(clock: ManualClock) -> AnsweringJudge:
    return AnsweringJudge(SETTINGS, clock.monotonic())


def test_a_short_hello_then_silence_is_a_person() -> None:
    clock = ManualClock()
    j = judge(clock)
    clock.advance(0.8)
    j.speech_started(clock.monotonic())
    clock.advance(0.6)  # "Hello?"
    j.speech_stopped(clock.monotonic(), at_ms=1400)
    clock.advance(0.5)
    assert j.tick(clock.monotonic()) is None  # not quiet long enough yet
    clock.advance(0.4)
    assert j.tick(clock.monotonic()) == "human" and "short greeting" in j.reason
    assert j.judged(1400) and not j.judged(5000)


def test_a_long_greeting_or_a_machines_words_is_a_machine() -> None:
    clock = ManualClock()
    j = judge(clock)
    j.speech_started(clock.monotonic())
    clock.advance(1.2)
    assert j.tick(clock.monotonic()) is None
    clock.advance(0.7)  # still talking, 1.9 s in
    assert j.tick(clock.monotonic()) == "machine" and "greeting of" in j.reason
    worded = judge(clock)
    worded.heard("Hi, please leave a message")
    assert worded.tick(clock.monotonic()) == "machine" and "leave a message" in worded.reason
    french = judge(clock)
    french.heard("Vous êtes bien sur la messagerie de Anne")
    assert french.tick(clock.monotonic()) == "machine"


def test_nobody_speaking_is_a_person_waiting() -> None:
    clock = ManualClock()
    j = judge(clock)
    clock.advance(3.9)
    assert j.tick(clock.monotonic()) is None
    clock.advance(0.2)
    assert j.tick(clock.monotonic()) == "human" and "silence" in j.reason


def test_the_machine_is_done_after_the_greeting_and_the_beeps_silence() -> None:
    clock = ManualClock()
    j = judge(clock)
    j.speech_started(clock.monotonic())
    clock.advance(3.0)
    assert j.tick(clock.monotonic()) == "machine"
    assert not j.machine_finished(clock.monotonic())  # still greeting
    j.speech_stopped(clock.monotonic(), at_ms=3000)
    clock.advance(0.3)
    j.speech_started(clock.monotonic())  # the beep
    clock.advance(0.4)
    j.speech_stopped(clock.monotonic(), at_ms=3700)
    clock.advance(1.0)
    assert not j.machine_finished(clock.monotonic())
    clock.advance(0.3)
    assert j.machine_finished(clock.monotonic())


def callee(clock: ManualClock, voicemail: str = VOICEMAIL) -> tuple[Callee, FakeOut, AgentSide]:
    state = CallState(call_id="c", owner="agent-1", outbound=True)
    out = FakeOut()
    sent: list[Any] = []

    async def send(command: Any) -> bool:
        sent.append(command)
        return True

    async def control(action: str, gen: int | None = None) -> bool:
        sent.append(CallControl(call_id="c", action=action))  # type: ignore[arg-type]
        return True

    out.send, out.control = send, control  # type: ignore[method-assign]
    out.sent = sent  # type: ignore[attr-defined]
    agent = AgentSide(Conversation(state, SETTINGS), FakeStore(), out, SETTINGS, clock)  # type: ignore[arg-type]
    return Callee(AnsweringJudge(SETTINGS, clock.monotonic()), agent, out, clock, voicemail), out, agent  # type: ignore[arg-type]


async def test_a_person_is_greeted_once_and_their_hello_not_answered() -> None:
    clock = ManualClock()
    c, out, _agent = callee(clock)
    assert await c.took(SpeechStarted(call_id="c", at_ms=500))
    clock.advance(0.6)
    assert await c.took(SpeechEnded(call_id="c", at_ms=1100, decided_ms=1300, at_ts=0.0))
    clock.advance(0.9)
    await c.tick()
    assert [e.answered_by for e in out.events if isinstance(e, AnsweredBy)] == ["human"]
    assert out.spoken == [(SETTINGS.greeting, True)]
    hello = SttFinal(call_id="c", text="Hello?", start_ms=500, end_ms=1100, compute_s=0.1)
    assert await c.took(hello)  # their hello: the greeting answers it
    assert not await c.took(SpeechStarted(call_id="c", at_ms=4000))  # what they say next: turn-taking's
    later = SttFinal(call_id="c", text="Yes, I'll be there.", start_ms=4000, end_ms=5200, compute_s=0.1)
    assert not await c.took(later)


async def test_a_machine_gets_the_voicemail_after_its_beep_then_a_hang_up() -> None:
    clock = ManualClock()
    c, out, agent = callee(clock)
    await c.took(SpeechStarted(call_id="c", at_ms=300))
    await c.took(
        SttFinal(
            call_id="c",
            text="You have reached Ann, leave a message",
            start_ms=300,
            end_ms=2000,
            compute_s=0.1,
        )
    )
    assert [e.answered_by for e in out.events if isinstance(e, AnsweredBy)] == ["machine"]
    assert not out.spoken  # never a word to a machine before its beep
    clock.advance(2.0)
    await c.took(SpeechEnded(call_id="c", at_ms=4500, decided_ms=4700, at_ts=0.0))
    clock.advance(1.3)
    await c.tick()
    assert out.spoken == [(VOICEMAIL, True)]
    assert any(isinstance(e, VoicemailLeft) for e in out.events)
    assert agent.current is not None and agent.current.after_playout[0].action == "hangup"


async def test_a_machine_with_no_voicemail_to_leave_is_hung_up_on() -> None:
    clock = ManualClock()
    c, out, _agent = callee(clock, voicemail="")
    await c.took(SpeechStarted(call_id="c", at_ms=0))
    clock.advance(1.0)
    await c.took(SpeechEnded(call_id="c", at_ms=1000, decided_ms=1200, at_ts=0.0))
    await c.took(
        SttFinal(
            call_id="c", text="Please leave a message after the tone", start_ms=0, end_ms=2500, compute_s=0.1
        )
    )
    clock.advance(1.5)
    await c.tick()
    assert [m.action for m in out.sent] == ["hangup"] and not out.spoken  # type: ignore[attr-defined]
