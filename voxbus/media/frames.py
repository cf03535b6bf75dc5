"""The one internal audio format: PCM16 LE mono, 16 kHz, 20 ms frames (320 samples, 640 bytes)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import soxr

SAMPLE_RATE = 16_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)
HEARD_LEVEL = 500  # int16 peak that counts as agent audio, to a caller


def is_loud(pcm: bytes) -> bool:
    """Whether a caller hears this frame as the agent speaking."""
    return bool(pcm) and int(np.abs(np.frombuffer(pcm, np.int16).astype(np.int32)).max()) > HEARD_LEVEL


def to_float(pcm: bytes | np.ndarray) -> np.ndarray:
    """PCM16 bytes or int16 samples -> float32 in [-1, 1]."""
    samples = np.frombuffer(pcm, dtype=np.int16) if isinstance(pcm, bytes | bytearray) else pcm
    return samples.astype(np.float32) / 32768.0


def to_pcm16(samples: np.ndarray) -> bytes:
    """float32 in [-1, 1] (or int16) -> PCM16 LE bytes, clipped."""
    if samples.dtype == np.int16:
        return samples.tobytes()
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def level_db(samples: np.ndarray) -> float:
    """RMS level of float32 samples in dBFS (-120 for digital silence)."""
    power = float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
    return 10.0 * np.log10(max(power, 1e-12))


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a whole signal with soxr (high quality; the library everyone uses for this)."""
    if rate_in == rate_out:
        return samples
    return soxr.resample(samples, rate_in, rate_out, quality="HQ")


class Framer:
    """Cuts a stream of PCM16 bytes into 640-byte frames, carrying the remainder across calls."""

    def __init__(self) -> None:
        self._rest = b""

    def push(self, pcm: bytes) -> Iterator[bytes]:
        data = self._rest + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            yield data[i : i + FRAME_BYTES]
        self._rest = data[whole:]

    def flush(self) -> bytes | None:
        """The remainder padded with silence to one frame, or None when nothing remains."""
        if not self._rest:
            return None
        frame = self._rest + bytes(FRAME_BYTES - len(self._rest))
        self._rest = b""
        return frame


def frames_of(pcm: bytes) -> list[bytes]:
    framer = Framer()
    frames = list(framer.push(pcm))
    tail = framer.flush()
    return frames + ([tail] if tail else [])
