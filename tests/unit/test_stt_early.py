"""Whisper asked ahead of the pause: after ``turn.early_ms`` of silence the turn's words are already
being transcribed, and if that silence becomes the pause they decide the turn with no second
transcription; if the caller spoke again in between, the pause's own transcription (of the whole
turn) decides instead, and the early words are dropped."""

from __future__ import annotations

import asyncio

import numpy as np

from voxbus.actors.stt_session import CallSession, Turn
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.engines.stt import Transcript
from voxbus.media.frames import SAMPLE_RATE
from voxbus.schemas.events import SttFinal


class Emitted(list):  # type: ignore[type-arg]
    def emit(self, event: object) -> None:
        self.append(event)


class CountingWhisper:
    """Stands in for the transcriber: the words are how many seconds of audio it was given."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        self.asked.append(len(audio) / SAMPLE_RATE)
        await asyncio.sleep(0.05)
        return Transcript(f"Heard {len(audio) * 10 // SAMPLE_RATE} tenths.", 0.05, "en", 0.0)


def session_with_a_turn(whisper: CountingWhisper, bus: Emitted) -> tuple[CallSession, Turn]:
    session = CallSession(
        bus,  # type: ignore[arg-type]
        "call-e",
        SttSettings(),
        TurnSettings(),
        whisper,  # type: ignore[arg-type]
        lambda _cid: None,
    )
    session.hearing = False  # no frames to wait for: the words decide as soon as they are known
    turn = session.turn = Turn(np.zeros(2 * SAMPLE_RATE, np.float32), 0)  # two seconds of speech
    return session, turn


async def settle(session: CallSession) -> None:
    while session.tasks:
        await asyncio.gather(*session.tasks)


def finals(bus: Emitted) -> list[str]:
    return [e.text for e in bus if isinstance(e, SttFinal)]


async def test_a_pause_of_the_early_silence_is_decided_by_the_words_already_asked_for() -> None:
    whisper, bus = CountingWhisper(), Emitted()
    session, turn = session_with_a_turn(whisper, bus)
    session._hear_early(1000)  # silence since 1.0 s, for turn.early_ms
    session._speech_paused(1000)  # the same silence reaches turn.pause_ms
    await settle(session)
    assert len(whisper.asked) == 1, "the pause asked whisper again for words it had asked for"
    assert finals(bus) == ["Heard 11 tenths."]  # to 1.0 s and the 120 ms of word endings after it


async def test_a_caller_who_went_on_after_the_early_silence_is_heard_whole_at_the_pause() -> None:
    whisper, bus = CountingWhisper(), Emitted()
    session, turn = session_with_a_turn(whisper, bus)
    session._hear_early(600)  # a short silence at 0.6 s ...
    session._speech_paused(1500)  # ... then more words, and the pause after them at 1.5 s
    await settle(session)
    assert len(whisper.asked) == 2
    assert finals(bus) == ["Heard 16 tenths."]  # the whole turn, not its first 0.6 s


async def test_early_words_of_a_turn_the_caller_resumed_after_its_pause_are_stale() -> None:
    whisper, bus = CountingWhisper(), Emitted()
    session, turn = session_with_a_turn(whisper, bus)
    session._hear_early(1000)
    turn.version += 1  # the caller went on (a resume bumps the turn's version)
    session._speech_paused(1000)  # a pause whose silence start matches, but of another version
    await settle(session)
    assert len(whisper.asked) == 2 and finals(bus) == ["Heard 11 tenths."]
