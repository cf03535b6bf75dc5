"""WAV sources and sinks on the call timeline.

The source paces a caller's WAV as real-time 20 ms frames, exactly as the SIP gateway delivers
them. The sink writes agent audio at the frame index it was played at, with silence where the agent
said nothing, so that the recording's timeline is the call's timeline.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voxbus.media.frames import FRAME_BYTES, SAMPLE_RATE, frames_of, resample, to_float, to_pcm16


class BadWav(ValueError):
    pass


def read_wav(path: Path) -> bytes:
    """Any PCM16 WAV (mono or stereo, any rate) -> PCM16 mono 16 kHz bytes."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise BadWav(f"{path}: only 16-bit PCM WAV is supported, got {8 * w.getsampwidth()}-bit")
            rate, channels = w.getframerate(), w.getnchannels()
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadWav(f"{path}: not a WAV file ({exc})") from None
    samples = np.frombuffer(data, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != SAMPLE_RATE:
        return to_pcm16(resample(to_float(samples), rate))
    return samples.tobytes()


def write_wav(path: Path, pcm: bytes, rate: int = SAMPLE_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class WavSource:
    """A caller WAV as a list of 20 ms frames; the file call paces them on its clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = frames_of(read_wav(path))

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> bytes | None:
        return self.frames[index] if index < len(self.frames) else None

    def heard(self, index: int, loud: bool) -> None:
        """A recording does not listen."""

    def finished(self, index: int) -> bool:
        return index >= len(self.frames)


class TimelineSink:
    """Agent audio placed at the call-timeline frame index it was played at."""

    def __init__(self) -> None:
        self._frames: dict[int, bytes] = {}
        self.length = 0

    def put(self, index: int, pcm: bytes) -> None:
        self._frames[index] = pcm
        self.length = max(self.length, index + 1)

    def extend_to(self, index: int) -> None:
        self.length = max(self.length, index)

    def pcm(self) -> bytes:
        silence = bytes(FRAME_BYTES)
        return b"".join(self._frames.get(i, silence) for i in range(self.length))

    def save(self, path: Path) -> None:
        write_wav(path, self.pcm())
