"""Speech-to-text: faster-whisper (CTranslate2), int8 on the CPU.

Whisper is trained on 30 s windows and faster-whisper pads every clip to 30 s, so tiny.en costs
about 300 ms for any turn. A caller's turn is a few seconds: with ``stt.context_s`` below 30 the
encoder sees only that many seconds (the turn and trailing silence), which CTranslate2 accepts, and
the encoder's cost falls with it (16 s: about 100 ms in all). With less context whisper tends to
repeat itself at the end, so the decoder's length is bounded by the audio's and a sentence that
repeats the one before it is dropped.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from voxbus.config import SttSettings
from voxbus.media.frames import SAMPLE_RATE

# whisper writes non-speech as "(coughing)", "[BLANK_AUDIO]" or "*sighs*": not words of the caller
_SOUND_NOTES = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*|♪+")


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
FULL_CONTEXT_S = 30
NO_SPEECH = 0.8  # whisper's own estimate that the clip holds no speech at all


def spoken_words(text: str) -> str:
    return " ".join(_SOUND_NOTES.sub(" ", text).split())


def without_repeats(text: str) -> str:
    """Drop sentences that repeat the one before them ("What do bees make? What do bees make?")."""
    kept: list[str] = []
    for sentence in (m.group(0).strip() for m in _SENTENCE.finditer(text)):
        if sentence and (not kept or sentence.lower() != kept[-1].lower()):
            kept.append(sentence)
    return " ".join(kept)


class WhisperEngine:
    def __init__(self, model_dir: Path, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.settings = settings
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=settings.cpu_threads
        )
        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task="transcribe",
            language=settings.language,
        )
        prompt = self.tokenizer.encode(" " + settings.prompt.strip()) if settings.prompt.strip() else []
        self._prompt = [
            *([self.tokenizer.sot_prev, *prompt] if prompt else []),
            *self.tokenizer.sot_sequence,
            self.tokenizer.no_timestamps,
        ]

    def warm(self) -> None:
        """The first transcription of a process is several times slower (allocations, caches):
        pay for it before the first caller does. Blocking."""
        self.transcribe(np.zeros(SAMPLE_RATE, np.float32))

    def transcribe(self, audio: np.ndarray) -> tuple[str, float]:
        """float32 16 kHz samples -> (text, compute seconds). Blocking: run it in a thread."""
        context_s = self.settings.context_s
        if context_s < FULL_CONTEXT_S and len(audio) + 4 * SAMPLE_RATE <= FULL_CONTEXT_S * SAMPLE_RATE:
            return self._transcribe_short(audio, max(context_s, len(audio) / SAMPLE_RATE + 4))
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

    def _transcribe_short(self, audio: np.ndarray, context_s: float) -> tuple[str, float]:
        """Whisper on ``context_s`` seconds instead of 30: the turn, then silence."""
        import ctranslate2

        started = time.perf_counter()
        samples = int(np.ceil(context_s)) * SAMPLE_RATE
        padded = np.zeros(samples, np.float32)
        padded[: len(audio)] = audio
        features = self.model.feature_extractor(padded)[
            :, : samples // self.model.feature_extractor.hop_length
        ]
        encoded = self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])), to_cpu=False
        )
        result = self.model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self.settings.beam_size,
            max_length=len(self._prompt) + int(8 * len(audio) / SAMPLE_RATE) + 8,  # ~3 words a second
            suppress_blank=True,
            suppress_tokens=[-1],
            return_no_speech_prob=True,
        )[0]
        if result.no_speech_prob > NO_SPEECH:
            return "", time.perf_counter() - started
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        text = without_repeats(spoken_words(self.tokenizer.decode(tokens)))
        return text, time.perf_counter() - started
