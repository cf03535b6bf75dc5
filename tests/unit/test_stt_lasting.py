"""The length rule of a barge-in, in the STT worker: speech over the agent that goes on without a
pause for ``turn.barge_in_min_speech_ms`` is said (``speech.lasting``), counted on the caller
audio's own clock, however late the frames are handled."""

from __future__ import annotations

import asyncio

import numpy as np

from voxbus.actors.stt_session import CallSession
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.engines.stt import Transcript
from voxbus.media.vad import WINDOW_MS
from voxbus.schemas.events import SpeechLasting, SpeechStarted

from .test_partials import Emitted

WINDOW = 512  # samples a VAD window


class Whisper:
    def __init__(self, words: str = "Sorry to cut in, how much is it?") -> None:
        self.pending, self.words = 0, words

    def quick(self, language: str) -> bool:
        return True

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        return Transcript(self.words, 0.01, "en", 0.0)


class ScriptedVad:
    """Stands in for Silero: one window's speech probability per push, in the order given."""

    def __init__(self, probs: list[float]) -> None:
        self.probs = iter(probs)

    def push(self, samples: np.ndarray) -> list[float]:
        return [next(self.probs)]


async def lasting(
    speech_ms: int, over_agent: bool = True, gap_ms: int = 0, head: str = ""
) -> list[SpeechLasting]:
    """``speech_ms`` of speech (a silence of ``gap_ms`` in its middle), then silence: fed window by
    window, with no wall clock anywhere (the windows are the only time there is)."""
    bus = Emitted()
    session = CallSession(
        bus,  # type: ignore[arg-type]
        "call-l",
        SttSettings(partial_interval_ms=0, head_ms=240 if head else 0),
        TurnSettings(),
        Whisper(head or "Sorry to cut in, how much is it?"),  # type: ignore[arg-type]
        lambda _cid: None,
        language="en",
    )
    half, gap = speech_ms // WINDOW_MS // 2, gap_ms // WINDOW_MS
    probs = [0.9] * half + [0.1] * gap + [0.9] * half + [0.1] * 60
    session.vad = ScriptedVad(probs)  # type: ignore[assignment]
    for _ in probs:
        session._feed(np.zeros(WINDOW, np.float32))
        if session.turn is not None:
            session.turn.over_agent = over_agent
        await asyncio.sleep(0)  # whisper's words (the head's) come back between two windows
    await asyncio.gather(*session.tasks)
    assert any(isinstance(e, SpeechStarted) for e in bus)
    return [e for e in bus if isinstance(e, SpeechLasting)]


def test_speech_over_the_agent_that_goes_on_is_said_to_last_once() -> None:
    long_ms = TurnSettings().barge_in_min_speech_ms + 300
    [event] = asyncio.run(lasting(long_ms))
    assert event.at_ms == 0 and event.lasted_ms >= TurnSettings().barge_in_min_speech_ms


def test_short_speech_a_pause_in_it_or_the_agent_silent_is_not() -> None:
    limit = TurnSettings().barge_in_min_speech_ms
    assert asyncio.run(lasting(limit - 200)) == []
    assert asyncio.run(lasting(limit + 300, gap_ms=TurnSettings().pause_ms + 64)) == []  # two stretches
    assert asyncio.run(lasting(limit + 300, over_agent=False)) == []  # the caller's own turn
    [event] = asyncio.run(lasting(limit + 300, gap_ms=96))  # a breath, not a pause: one stretch
    assert event.at_ms == 0


def test_after_a_head_the_agent_resumes_on_the_length_counts_anew() -> None:
    limit = TurnSettings().barge_in_min_speech_ms
    # 1.3 s of speech: lasting from the onset when the head is words ("Sorry,": the agent stays
    # held), not when it is a backchannel the agent resumes on (its echo may follow at once)
    assert len(asyncio.run(lasting(limit + 100, head="Sorry,"))) == 1
    assert asyncio.run(lasting(limit + 100, head="Mm-hmm.")) == []
    [event] = asyncio.run(lasting(limit + 600, head="Mm-hmm."))  # speech that goes on after it
    assert event.at_ms > 200  # counted from where the head's words came back
