"""What the STT worker knows of a caller's turn while it is being spoken."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from voxbus.actors.turn_settings import TurnSettings
from voxbus.engines.stt import Transcript
from voxbus.media.frames import FRAME_MS, FRAME_SAMPLES, level_db
from voxbus.schemas.messages import AudioFrame


def is_echo(samples: np.ndarray, floor_db: float) -> bool:
    """Tells the agent's echo from the caller's voice by level, while the agent's audio plays: a
    caller frame quieter than ``floor_db`` (:func:`echo_floor`) is its echo."""
    return level_db(samples) < floor_db


def echo_floor(frame: AudioFrame, turns: TurnSettings) -> float | None:
    """The level under which ``frame`` is taken for the agent's echo: the echo expected in it plus
    ``turn.echo_margin_db`` once the gateway has measured the line's echo, else the agent's level
    plus ``turn.echo_gate_db``; None: no gate (the agent silent, or the gate off)."""
    if turns.echo_gate_db is None or frame.far_db is None:
        return None
    if frame.echo_db is not None:
        return frame.echo_db + turns.echo_margin_db
    return frame.far_db + turns.echo_gate_db


def voice_level_db(samples: np.ndarray, frame: int = FRAME_SAMPLES) -> float:
    """The level of a voice in ``samples``: the 75th percentile of its 20 ms frames' levels (its
    vowels, not the gaps between its sounds)."""
    levels = [level_db(samples[i : i + frame]) for i in range(0, len(samples) - frame + 1, frame)]
    return float(np.percentile(levels, 75)) if levels else -120.0


def stands_clear(voice: np.ndarray, floors: Iterable[float], margin_db: float) -> bool:
    """Whether a caller's ``voice`` stands ``margin_db`` above the loudest of the echo gate's recent
    ``floors``: heard still if the agent's audio played over it (no floors: no gate, it is)."""
    loudest = max(floors, default=None)
    return loudest is None or voice_level_db(voice) >= loudest + margin_db


class CaptureTimes:
    """When the caller's audio was captured, by frame: the call timeline's link to the wall clock."""

    def __init__(self) -> None:
        self.of_seq: deque[tuple[int, float]] = deque(maxlen=1000)

    def note(self, seq: int, ts: float) -> None:
        self.of_seq.append((seq, ts))

    def at(self, at_ms: int) -> float:
        """Capture time (epoch s) of the caller audio at ``at_ms`` on the call timeline."""
        seq = at_ms // FRAME_MS
        for s, ts in reversed(self.of_seq):
            if s <= seq:
                return ts + (seq - s) * FRAME_MS / 1000
        return self.of_seq[0][1] if self.of_seq else time.time()


Heard = tuple[Transcript, int, float]  # the words, and the audio time and moment whisper was asked


@dataclass(frozen=True)
class EarlyHearing:
    """Whisper asked after ``turn.early_ms`` of the silence that began at ``at_ms``."""

    at_ms: int
    version: int
    heard: asyncio.Task[Heard]


class Turn:
    """The caller's current turn: its audio since the onset and what is known of its words."""

    def __init__(self, audio: np.ndarray, start_ms: int) -> None:
        self.audio: list[np.ndarray] = [audio]
        self.start_ms = start_ms
        self.pause_ms = start_ms  # where speech last stopped
        self.version = 0  # bumped when the caller goes on: older transcripts are stale
        self.text: str | None = None  # transcript of the current version, once known
        self.compute_s = 0.0
        self.silence_over = False  # turn.unfinished_wait_ms of silence reached
        self.early: EarlyHearing | None = None  # whisper asked ahead of the pause
        self.over_agent = False  # some of it was said while the agent's audio played
        self.head_asked = False  # whisper heard its first words over the agent (stt.head_ms)
