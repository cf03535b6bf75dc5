"""The STT worker's echo gate keeps the agent's echo from starting a turn; whether whisper also hears
the gated (zeroed) frames depends on whether the gateway cancelled the echo first."""

from __future__ import annotations

import asyncio

import numpy as np

from voxbus.actors.stt_session import CallSession
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import Settings, SttSettings
from voxbus.media.frames import FRAME_SAMPLES, to_pcm16
from voxbus.schemas.events import SpeechStarted
from voxbus.schemas.messages import AudioFrame


def session(gate_words: bool) -> CallSession:
    return CallSession(
        None,  # type: ignore[arg-type]  # no turn starts on these frames: nothing is sent
        "call-g",
        SttSettings(),
        TurnSettings(echo_gate_db=-16.0),
        None,  # type: ignore[arg-type]
        lambda _cid: None,
        gate_words=gate_words,
    )


def quiet_frame(seq: int) -> AudioFrame:
    """A caller frame 30 dB below the agent's level: the gate takes it for echo."""
    samples = np.random.default_rng(seq).normal(0, 10 ** (-50 / 20), FRAME_SAMPLES).astype(np.float32)
    return AudioFrame(call_id="call-g", seq=seq, pcm=to_pcm16(samples), far_db=-20.0)


class HeardByVad:
    """Stands in for the Silero VAD: records what it is given, finds no speech."""

    def __init__(self) -> None:
        self.heard: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> list[float]:
        self.heard.append(samples.copy())
        return []


def fed(gate_words: bool) -> tuple[np.ndarray, np.ndarray]:
    """What whisper would hear (the session's history) and what the VAD heard."""
    s = session(gate_words)
    s.vad = vad = HeardByVad()  # type: ignore[assignment]
    for seq in range(5):
        asyncio.run(s._on_frame(quiet_frame(seq), None))  # type: ignore[arg-type]
    return s.history, np.concatenate(vad.heard)


def test_with_a_canceller_whisper_hears_what_the_gate_silenced_for_the_vad() -> None:
    whisper, vad = fed(gate_words=False)
    assert np.abs(whisper).max() > 0 and np.abs(vad).max() == 0
    whisper, vad = fed(gate_words=True)  # no canceller: the echo would be under the caller's words
    assert np.abs(whisper).max() == 0 and np.abs(vad).max() == 0


def test_whisper_hears_the_gate_only_without_a_canceller_unless_told() -> None:
    assert Settings(sip={"echo_canceller": "off"}).echo_gate_words()
    assert not Settings(sip={"echo_canceller": "speex"}).echo_gate_words()
    assert Settings().echo_gate_words()  # no canceller by default
    assert Settings(turn={"echo_gate_words": True}).echo_gate_words()


class Emitted:
    """Stands in for the bus: records the events the session emits."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def emit(self, event: object) -> None:
        self.events.append(event)


def onset_after(far: list[float | None]) -> SpeechStarted:
    """The caller's onset at the end of frames whose agent levels were ``far`` (None: silent)."""
    s = session(gate_words=True)
    s.bus = Emitted()  # type: ignore[assignment]
    s.vad = HeardByVad()  # type: ignore[assignment]
    for seq, far_db in enumerate(far):
        frame = quiet_frame(seq).model_copy(update={"far_db": far_db})
        asyncio.run(s._on_frame(frame, None))  # type: ignore[arg-type]
    s._speech_started(s.now_ms() - s.settings.min_speech_ms)
    [started] = s.bus.events  # type: ignore[attr-defined]
    assert isinstance(started, SpeechStarted)
    return started


def test_an_onset_says_whether_the_agent_was_on_the_line() -> None:
    """Speech into silence (the agent waits on a tool after its holding phrase) is told from
    speech over its audio: the call actor answers the first after the tool, judges the second."""
    assert onset_after([-20.0] * 50).over_agent is True
    assert onset_after([-20.0] * 10 + [None] * 40).over_agent is False  # 0.8 s of silence before
    assert onset_after([None] * 50).over_agent is False
