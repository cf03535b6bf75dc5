"""Speech-to-text: faster-whisper (CTranslate2), int8 on the CPU.

Whisper is trained on 30 s windows and faster-whisper pads every clip to 30 s, so tiny.en costs
about 300 ms for any turn. A caller's turn is a few seconds: with ``stt.context_s`` below 30 the
encoder sees only that many seconds (the turn and trailing silence), which CTranslate2 accepts, and
the encoder's cost falls with it (8 s, the default: about 150 ms a turn on this project's
machines, 16 s about 210 ms). With less context whisper tends to
repeat itself at the end, so the decoder's length is bounded by the audio's, a sentence that
repeats the one before it is dropped and a group of words looped inside a sentence is kept once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from voxbus.config import SttSettings
from voxbus.lexicons import TITLES
from voxbus.media.frames import SAMPLE_RATE

# whisper writes non-speech as "(coughing)", "[BLANK_AUDIO]" or "*sighs*": not words of the caller
_SOUND_NOTES = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*|♪+")


_WORDS = re.compile(r"[\w']+")
FULL_CONTEXT_S = 30
NO_SPEECH = 0.8  # whisper's own estimate that the clip holds no speech at all
MAX_PROMPT_TOKENS = 223  # whisper's n_text_ctx // 2 - 1, as faster-whisper cuts it
PROMPTS_KEPT = 64
SAID_MAX_CHARS = 240  # the agent's last words in the prompt: its question, not its whole answer
LOOP_MAX_WORDS = 6  # the longest group of words whose loop is caught
LOOP_MIN_REPEATS = 4


def spoken_words(text: str) -> str:
    return " ".join(_SOUND_NOTES.sub(" ", text).split())


def sentences(text: str) -> list[str]:
    """``text`` cut after each word that ends with ".", "!" or "?", unless it is a title ("Mrs.")."""
    found: list[str] = []
    current: list[str] = []
    for word in text.split():
        current.append(word)
        if word[-1] in ".!?" and word.rstrip(".!?").lower() not in TITLES:
            found.append(" ".join(current))
            current = []
    return found + ([" ".join(current)] if current else [])


def without_repeats(text: str) -> str:
    """Drop sentences that repeat the one before them ("What do bees make? What do bees make?"),
    punctuation and case aside ("...the next time? Can you move ... the next time")."""
    kept: list[str] = []
    for sentence in sentences(text):
        if not kept or _bare(sentence) != _bare(kept[-1]):
            kept.append(sentence)
    return " ".join(kept)


def _bare(sentence: str) -> str:
    return " ".join(_WORDS.findall(sentence.lower()))


def without_loops(text: str, longest: int = LOOP_MAX_WORDS, at_least: int = LOOP_MIN_REPEATS) -> str:
    """Keep once a group of up to ``longest`` words said ``at_least`` times in a row: whisper's
    decoder can loop inside a sentence ("your host, your host, your host, ..." eleven times), and
    a caller repeats a word three times ("no, no, no") but not four."""
    words = text.split()
    key = [w.strip(".,!?;:").lower() for w in words]
    kept: list[str] = []
    i = 0
    while i < len(words):
        for size in range(1, longest + 1):
            group = key[i : i + size]
            repeats = 1
            while key[i + repeats * size : i + (repeats + 1) * size] == group:
                repeats += 1
            if len(group) == size and repeats >= at_least:
                # the last time it was said carries the sentence's punctuation
                kept.extend(words[i + (repeats - 1) * size : i + repeats * size])
                i += repeats * size
                break
        else:
            kept.append(words[i])
            i += 1
    return " ".join(kept)


def priming(
    settings: SttSettings,
    language: str | None,
    vocabulary: Sequence[str] = (),
    said: str = "",
    cues: str = "",
) -> str:
    """Whisper's prompt text: the language's fillers (see ``stt.prompt``), then the words the
    agent's callers are expected to say (``agent.vocabulary``), as a list: whisper writes a word
    it has just read in its prompt more readily, which is what names on a phone line need. Last,
    ``said``: what the agent has just said to the caller (its latest words), read as the text that
    came before the caller's, as whisper reads the preceding text of a long recording: an answer to
    "Monday at ten or Wednesday at two?" is written with those words. ``cues``: words in place of
    the fillers (over the agent's audio, the barge-in judge's: see ``Lexicon.cue_words``)."""
    words = ", ".join(w.strip() for w in vocabulary if w.strip())
    said = " ".join(said.split())
    if len(said) > SAID_MAX_CHARS:  # its last words, whole
        said = said[-SAID_MAX_CHARS:].split(" ", 1)[-1]
    parts = (cues or settings.prompt_for(language).strip(), words and words + ".", said)
    return " ".join(p for p in parts if p)


class Transcript(NamedTuple):
    text: str
    compute_s: float
    language: str  # the language transcribed: the one asked for, or the one whisper heard
    # whisper's estimate that the clip holds no speech (0-1): its words for a hum or a crackle
    # come with a high one, a caller's words with a low one
    no_speech: float = 0.0


class WhisperEngine:
    """One whisper model. An English-only model (``tiny.en``) transcribes English; a multilingual
    one transcribes the language it is asked for, or with ``language=None`` the one it hears."""

    def __init__(self, model_dir: Path, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=settings.cpu_threads
        )
        self.multilingual = self.model.model.is_multilingual
        self.tokenizer = self._tokenizer("en")  # decoding does not depend on the language
        self._prompts: dict[tuple[str, tuple[str, ...], str, str], list[int]] = {}

    def _tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language)

    def _prompt(
        self, language: str, vocabulary: tuple[str, ...] = (), said: str = "", cues: str = ""
    ) -> list[int]:
        """The decoder's start for a language: the priming text, then whisper's task tokens."""
        key = (language, vocabulary, said, cues)
        if key not in self._prompts:
            tokenizer = self._tokenizer(language)
            text = priming(self.settings, language, vocabulary, said, cues)
            # whisper reads at most half its 448-token context as a prompt: the latest words count
            prompt = tokenizer.encode(" " + text)[-(MAX_PROMPT_TOKENS):] if text else []
            while len(self._prompts) >= PROMPTS_KEPT:  # one per agent and language in practice
                self._prompts.pop(next(iter(self._prompts)))
            self._prompts[key] = [
                *([tokenizer.sot_prev, *prompt] if prompt else []),
                *tokenizer.sot_sequence,
                tokenizer.no_timestamps,
            ]
        return self._prompts[key]

    def warm(self) -> None:
        """The first transcription of a process is several times slower (allocations, caches):
        pay for it before the first caller does. Blocking."""
        self.transcribe(np.zeros(SAMPLE_RATE, np.float32), "en" if not self.multilingual else None)

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = "en",
        among: Collection[str] = (),
        vocabulary: Sequence[str] = (),
        said: str = "",
        cues: str = "",
    ) -> Transcript:
        """float32 16 kHz samples -> the words. ``language=None``: whisper detects it (a
        multilingual model only), the likeliest of ``among`` if given. ``vocabulary``: words to
        expect; ``said``: what the agent said just before; ``cues``: words in place of the fillers
        (see :func:`priming`). Blocking: run it in a thread."""
        if not self.multilingual:
            language = "en"
        # telling languages apart needs whisper's whole window: with less, French was taken for
        # English one time in four (espeak-ng voices, this machine)
        context_s = self.settings.context_s
        short = len(audio) + 4 * SAMPLE_RATE <= FULL_CONTEXT_S * SAMPLE_RATE
        vocabulary = tuple(vocabulary)
        if short and language is None:
            return self._transcribe_short(audio, FULL_CONTEXT_S, language, among, vocabulary, said, cues)
        if short and context_s < FULL_CONTEXT_S:
            seconds = max(context_s, len(audio) / SAMPLE_RATE + 4)
            return self._transcribe_short(audio, seconds, language, among, vocabulary, said, cues)
        started = time.perf_counter()
        segments, info = self.model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size(audio),
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=priming(self.settings, language, vocabulary, said, cues) or None,
        )
        heard = list(segments)
        text = without_loops(spoken_words(" ".join(s.text for s in heard)))
        no_speech = min((s.no_speech_prob for s in heard), default=1.0)
        return Transcript(text, time.perf_counter() - started, info.language, no_speech)

    def beam_size(self, audio: np.ndarray) -> int:
        return beam_for(len(audio) / SAMPLE_RATE, self.settings)

    def _transcribe_short(
        self,
        audio: np.ndarray,
        context_s: float,
        language: str | None,
        among: Collection[str],
        vocabulary: tuple[str, ...] = (),
        said: str = "",
        cues: str = "",
    ) -> Transcript:
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
        if language is None:  # the likeliest language, from the same encoder output
            heard = [token[2:-2] for token, _ in self.model.model.detect_language(encoded)[0]]
            language = next((code for code in heard if not among or code in among), heard[0])
        prompt = self._prompt(language, vocabulary, said, cues)
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=self.beam_size(audio),
            max_length=len(prompt) + int(8 * len(audio) / SAMPLE_RATE) + 8,  # ~3 words a second
            suppress_blank=True,
            suppress_tokens=[-1],
            return_no_speech_prob=True,
        )[0]
        no_speech = float(result.no_speech_prob)
        if no_speech > NO_SPEECH:
            return Transcript("", time.perf_counter() - started, language, no_speech)
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        text = without_loops(without_repeats(spoken_words(self.tokenizer.decode(tokens))))
        return Transcript(text, time.perf_counter() - started, language, no_speech)


def beam_for(seconds: float, settings: SttSettings) -> int:
    """Whisper's beam for a turn this long: wider for a short reply ("Friday at 9."), whose few
    words decide a booking and cost little to search (``stt.short_reply_s``)."""
    if seconds <= settings.short_reply_s:
        return max(settings.beam_size, settings.short_reply_beam_size)
    return settings.beam_size
