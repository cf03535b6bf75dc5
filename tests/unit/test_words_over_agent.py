"""Words that whisper doubts are speech (its no-speech estimate) do not interrupt the agent: over
the agent they are taken for the noise they were; a turn of the caller's own keeps them."""

from __future__ import annotations

import asyncio

import numpy as np

from voxbus.actors.stt_session import CallSession, Turn
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.engines.stt import Transcript
from voxbus.schemas.events import SttFinal


class Events:
    """Stands in for the bus: keeps what the session emits."""

    def __init__(self) -> None:
        self.emitted: list[object] = []

    def emit(self, event: object) -> None:
        self.emitted.append(event)


class Hears:
    """Stands in for whisper: the same words every time (a hum heard as a sentence), with the
    no-speech estimate given."""

    def __init__(self, no_speech: float) -> None:
        self.no_speech = no_speech

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        return Transcript("I agree on Friday.", 0.1, "en", self.no_speech)


def final_text(no_speech: float, over_agent: bool, limit: float | None = 0.4) -> str:
    events = Events()
    session = CallSession(
        events,  # type: ignore[arg-type]
        "call-n",
        SttSettings(),
        TurnSettings(barge_in_max_no_speech=limit),
        Hears(no_speech),  # type: ignore[arg-type]
        lambda _cid: None,
    )
    turn = session.turn = Turn(np.zeros(1600, np.float32), 0)
    turn.over_agent = over_agent
    asyncio.run(session._transcribe(turn, turn.version, np.zeros(8000, np.float32)))
    [final] = [e for e in events.emitted if isinstance(e, SttFinal)]
    return final.text


def test_doubted_words_over_the_agent_are_a_noise() -> None:
    assert final_text(no_speech=0.6, over_agent=True) == ""


def test_words_whisper_is_sure_of_interrupt_as_before() -> None:
    assert final_text(no_speech=0.1, over_agent=True) == "I agree on Friday."


def test_the_callers_own_turn_keeps_doubted_words() -> None:
    assert final_text(no_speech=0.6, over_agent=False) == "I agree on Friday."


def test_no_limit_keeps_every_word() -> None:
    assert final_text(no_speech=0.79, over_agent=True, limit=None) == "I agree on Friday."


def test_how_doubted_words_are_dropped_depends_on_what_whisper_hears() -> None:
    from voxbus.config import DOUBTED_OVER_CANCELLED, DOUBTED_OVER_GATED, DOUBTED_OVER_GATED_CUED, Settings

    # gated at the echo's delay, whisper primed with the barge-in judge's words (or the fillers)
    assert Settings().words_over_agent_no_speech() == DOUBTED_OVER_GATED_CUED
    assert Settings(stt={"over_agent_cues": False}).words_over_agent_no_speech() == DOUBTED_OVER_GATED
    # gated against the loudest frame: zeros enough that whisper doubts real words too
    assert Settings(sip={"echo_reference": "window"}).words_over_agent_no_speech() is None
    assert Settings(sip={"echo_canceller": "speex"}).words_over_agent_no_speech() == DOUBTED_OVER_CANCELLED
    assert Settings(turn={"barge_in_max_no_speech": 0.5}).words_over_agent_no_speech() == 0.5
