"""Whisper's words decide a turn only once the VAD has heard the audio that came while whisper ran:
a caller who went on after a short pause is not cut off there because the frames of their next
words were still waiting to be heard (under load, behind whisper on both cores)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxbus.actors import stt_session
from voxbus.actors.stt_session import BACKLOG_SLACK_MS, CallSession, Turn
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.engines.stt import Transcript
from voxbus.media.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE
from voxbus.schemas.events import SttFinal

WHISPER_S = 0.4  # how long whisper takes here: frames of that long are due when it answers


class Emitted(list):  # type: ignore[type-arg]
    def emit(self, event: object) -> None:
        self.append(event)


class SlowWhisper:
    """Stands in for the transcriber: answers "Dot." after WHISPER_S ("Stop," misheard)."""

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        await asyncio.sleep(WHISPER_S)
        return Transcript("Dot.", WHISPER_S, "en", 0.0)


def paused_session(bus: Emitted, hearing: bool = True) -> tuple[CallSession, Turn]:
    session = CallSession(
        bus,  # type: ignore[arg-type]
        "call-b",
        SttSettings(),
        TurnSettings(),
        SlowWhisper(),  # type: ignore[arg-type]
        lambda _cid: None,
    )
    session.hearing = hearing  # as if subscribed: frames still come
    turn = session.turn = Turn(np.zeros(SAMPLE_RATE // 2, np.float32), 0)
    turn.pause_ms = 360
    return session, turn


async def one_frame(session: CallSession) -> None:
    session._feed(np.zeros(FRAME_SAMPLES, np.float32))  # silence, as the VAD hears it
    await asyncio.sleep(0)


def finals(bus: Emitted) -> list[SttFinal]:
    return [e for e in bus if isinstance(e, SttFinal)]


async def test_words_that_came_back_in_the_backlog_keep_the_turn_open() -> None:
    bus = Emitted()
    session, turn = paused_session(bus)
    task = asyncio.create_task(session._transcribe(turn, turn.version, np.zeros(8000, np.float32)))
    await asyncio.sleep(WHISPER_S + 0.1)  # whisper has answered; none of the frames since is heard
    assert not task.done() and not finals(bus)
    # the first frames of the backlog: the caller spoke again (what the VAD says of speech)
    for _ in range(3):
        await one_frame(session)
    session._speech_resumed(session.now_ms())
    while not task.done():
        await one_frame(session)
    assert not finals(bus), "a turn the caller went on with was ended on its first words"
    assert session.turn is turn and turn.text is None


async def test_silence_in_the_backlog_ends_the_turn_on_the_words() -> None:
    bus = Emitted()
    session, turn = paused_session(bus)
    task = asyncio.create_task(session._transcribe(turn, turn.version, np.zeros(8000, np.float32)))
    await asyncio.sleep(WHISPER_S + 0.1)
    heard_ms = 0
    while not task.done():
        await one_frame(session)
        heard_ms += FRAME_MS
    [final] = finals(bus)
    assert final.text == "Dot."
    # it waited for the audio due while whisper ran, not for more than the slack beyond it
    assert heard_ms >= WHISPER_S * 1000 - BACKLOG_SLACK_MS


async def test_a_session_whose_audio_has_stopped_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stt_session, "BACKLOG_MAX_S", 3600.0)  # were it to wait, the test would hang
    bus = Emitted()
    session, turn = paused_session(bus, hearing=False)  # closed: no frame will come
    await asyncio.wait_for(session._transcribe(turn, turn.version, np.zeros(8000, np.float32)), 60)
    assert [f.text for f in finals(bus)] == ["Dot."]


async def test_a_stalled_stream_decides_after_the_longest_wait() -> None:
    bus = Emitted()
    session, turn = paused_session(bus)  # open, but no frame comes
    await session._transcribe(turn, turn.version, np.zeros(8000, np.float32))
    assert [f.text for f in finals(bus)] == ["Dot."]
