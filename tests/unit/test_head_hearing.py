"""The fast path of a barge-in, in the STT worker: over the agent, whisper hears the caller's first
``stt.head_ms`` of speech at once, once a turn, never behind other whisper work."""

from __future__ import annotations

import asyncio

import numpy as np

from voxbus.actors.stt_session import CallSession, Turn
from voxbus.actors.stt_turn import stands_clear
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.media.frames import SAMPLE_RATE
from voxbus.schemas.events import SttPartial

from .test_partials import Emitted, Whisper


async def heads(
    voiced_ms: int,
    over_agent: bool = True,
    pending: int = 0,
    version: int = 0,
    voice: float = 0.0,
    gates: tuple[float, ...] = (),
    **stt: int,
) -> tuple[list[object], Whisper]:
    bus, whisper = Emitted(), Whisper(pending)
    settings = SttSettings(**stt)
    session = CallSession(
        bus,  # type: ignore[arg-type]
        "call-h",
        settings,
        TurnSettings(),
        whisper,  # type: ignore[arg-type]
        lambda _cid: None,
        language="en",
        calls_open=lambda: 1,
    )
    audio = np.full(SAMPLE_RATE // 2, voice, np.float32)  # speech began pre_roll_ms in
    session.turn = Turn(audio, 0)
    session.recent_floors.extend(gates)
    session.turn.over_agent, session.turn.version = over_agent, version
    session.samples_seen = (settings.pre_roll_ms + voiced_ms) * SAMPLE_RATE // 1000
    session._maybe_head()
    session._maybe_head()  # asked once a turn
    await asyncio.gather(*session.tasks)
    return [e for e in bus if isinstance(e, SttPartial)], whisper


def test_the_first_words_over_the_agent_are_heard_once_the_head_is_long_enough() -> None:
    head_ms = SttSettings().head_ms
    assert asyncio.run(heads(head_ms - 20))[0] == []
    heard, whisper = asyncio.run(heads(head_ms))
    assert [p.text for p in heard] == ["I'd like to move my"] and whisper.asked == 1  # type: ignore[attr-defined]


def test_no_head_while_the_agent_is_silent_off_or_behind_other_whisper_work() -> None:
    assert asyncio.run(heads(400, over_agent=False))[0] == []
    assert asyncio.run(heads(400, head_ms=0))[0] == []
    assert asyncio.run(heads(400, pending=1))[0] == []
    assert asyncio.run(heads(400, version=1))[0] == []  # the caller spoke on after a pause: judged whole


def test_a_voice_the_resumed_agents_echo_gate_would_take_is_not_heard_ahead() -> None:
    # a voice at -20 dBFS against an echo gate that reached -30 dBFS: 10 dB clear, heard ahead
    voice = 10 ** (-20 / 20)
    assert asyncio.run(heads(400, voice=voice, gates=(-40.0, -30.0)))[0]
    # the same voice where the gate reached -24 dBFS: the agent resumed over it would gate it
    assert asyncio.run(heads(400, voice=voice, gates=(-40.0, -24.0)))[0] == []


def test_a_voice_stands_clear_by_its_loud_frames_not_its_gaps() -> None:
    frame = 320
    voiced = np.concatenate([np.full(3 * frame, 0.1, np.float32), np.zeros(frame, np.float32)])
    assert stands_clear(voiced, [-30.0], 6.0)  # -20 dBFS vowels, one silent frame between sounds
    assert not stands_clear(voiced, [-22.0], 6.0)
    assert stands_clear(voiced, [], 6.0)  # no gate: nothing takes the voice
