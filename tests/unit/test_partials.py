"""Partial transcripts while a caller speaks (their words prefilled into the LLM), where set: only
for a lone call, only while the agent is silent, never queued behind other whisper work."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np

from voxbus.actors.stt_session import CallSession, Turn
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.media.frames import SAMPLE_RATE
from voxbus.schemas.events import SttPartial


class Whisper:
    """Stands in for the transcriber: what it was asked, and whether other work is queued."""

    def __init__(self, pending: int = 0) -> None:
        self.pending, self.asked = pending, 0

    def quick(self, language: str) -> bool:
        return language == "en"

    async def transcribe(self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS) -> object:
        self.asked += 1
        return SimpleNamespace(text="I'd like to move my")


class Emitted(list):  # type: ignore[type-arg]
    def emit(self, event: object) -> None:
        self.append(event)


async def partials(
    calls: int = 1, over_agent: bool = False, pending: int = 0, language: str = "en", **stt: int
) -> list[object]:
    bus, whisper = Emitted(), Whisper(pending)
    session = CallSession(
        bus,  # type: ignore[arg-type]
        "call-p",
        SttSettings(**{"partial_interval_ms": 500, **stt}),
        TurnSettings(),
        whisper,  # type: ignore[arg-type]
        lambda _cid: None,
        language=language,
        calls_open=lambda: calls,
    )
    session.turn = Turn(np.zeros(SAMPLE_RATE, np.float32), 0)
    session.turn.over_agent = over_agent
    session.samples_seen = SAMPLE_RATE  # a second into the call: past the interval
    session._maybe_partial()
    await asyncio.gather(*session.tasks)
    return [e for e in bus if isinstance(e, SttPartial)]


def test_a_lone_callers_words_so_far_are_transcribed() -> None:
    heard = asyncio.run(partials())
    assert [p.text for p in heard] == ["I'd like to move my"]  # type: ignore[attr-defined]


def test_no_partials_with_more_calls_than_the_limit() -> None:
    assert asyncio.run(partials(calls=2)) == []
    assert asyncio.run(partials(calls=2, partials_max_calls=2))


def test_no_partials_over_the_agents_audio_nor_behind_other_whisper_work() -> None:
    assert asyncio.run(partials(over_agent=True)) == []
    assert asyncio.run(partials(pending=1)) == []


def test_partials_every_half_second_unless_turned_off() -> None:
    assert SttSettings().partial_interval_ms == 500
    assert asyncio.run(partials(partial_interval_ms=0)) == []


def test_no_partials_where_the_multilingual_model_hears_the_call() -> None:
    assert asyncio.run(partials(language="fr")) == []
    assert asyncio.run(partials(language="auto")) == []
