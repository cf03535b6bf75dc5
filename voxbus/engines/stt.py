"""Speech-to-text: faster-whisper (CTranslate2), int8 on the CPU."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from voxbus.config import SttSettings
from voxbus.media.frames import SAMPLE_RATE

# whisper writes non-speech as "(coughing)", "[BLANK_AUDIO]" or "*sighs*": not words of the caller
_SOUND_NOTES = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*|♪+")


def spoken_words(text: str) -> str:
    return " ".join(_SOUND_NOTES.sub(" ", text).split())


class WhisperEngine:
    def __init__(self, model_dir: Path, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=settings.cpu_threads
        )

    def warm(self) -> None:
        """The first transcription of a process is several times slower (allocations, caches):
        pay for it before the first caller does. Blocking."""
        self.transcribe(np.zeros(SAMPLE_RATE, np.float32))

    def transcribe(self, audio: np.ndarray) -> tuple[str, float]:
        """float32 16 kHz samples -> (text, compute seconds). Blocking: run it in a thread."""
        started = time.perf_counter()
        segments, _ = self.model.transcribe(
            audio,
            language=self.settings.language,
            beam_size=self.settings.beam_size,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=self.settings.prompt or None,
        )
        text = spoken_words(" ".join(s.text for s in segments))
        return text, time.perf_counter() - started
