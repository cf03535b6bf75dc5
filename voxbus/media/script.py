"""Scripted caller audio: spoken lines with pauses, synthesised with piper, with the exact time
each line's speech ends (what the latency benchmark measures from)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from voxbus.engines.tts import VoiceEngine
from voxbus.media.frames import FRAME_BYTES, SAMPLE_RATE
from voxbus.media.wav import write_wav

SPEECH_LEVEL = 300  # int16 amplitude that counts as speech when trimming piper's own silences


class Line(BaseModel):
    text: str
    pause_before_s: float = Field(default=1.0, ge=0)


class SpokenLine(BaseModel):
    text: str
    start_s: float
    end_s: float = Field(description="where the speech ends in the WAV (trailing silence trimmed)")


class CallerScript(BaseModel):
    lines: list[Line]
    tail_s: float = 0.5


DEMO_SCRIPT = CallerScript(
    lines=[
        Line(text="What is the capital of France?", pause_before_s=3.0),
        Line(text="How many days are there in a week?", pause_before_s=5.0),
        Line(text="Thank you. Can you name a colour of the sky?", pause_before_s=5.0),
    ]
)


def trim_silence(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SPEECH_LEVEL)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples[:0]


def render(script: CallerScript, engine: VoiceEngine, out: Path) -> list[SpokenLine]:
    """Write the caller WAV (16 kHz) and return where each line starts and ends."""
    pieces: list[np.ndarray] = []
    spoken: list[SpokenLine] = []
    at = 0
    for line in script.lines:
        gap = np.zeros(int(line.pause_before_s * SAMPLE_RATE), dtype=np.int16)
        speech = trim_silence(np.frombuffer(b"".join(engine.frames(line.text)), dtype=np.int16))
        pieces += [gap, speech]
        at += len(gap)
        spoken.append(
            SpokenLine(text=line.text, start_s=at / SAMPLE_RATE, end_s=(at + len(speech)) / SAMPLE_RATE)
        )
        at += len(speech)
    pieces.append(np.zeros(int(script.tail_s * SAMPLE_RATE), dtype=np.int16))
    pcm = np.concatenate(pieces).tobytes()
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    write_wav(out, pcm)
    return spoken
