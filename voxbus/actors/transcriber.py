"""The STT worker's whisper: one thread, shared by every call of a process."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from voxbus.engines.stt import Transcript, WhisperEngine


class Hints(NamedTuple):
    """What whisper is primed with besides the language (see ``voxbus.engines.stt.priming``)."""

    vocabulary: tuple[str, ...] = ()  # words the caller is expected to say
    said: str = ""  # the agent's words just before the caller's
    cues: str = ""  # in place of the fillers: the barge-in judge's words, over the agent's audio


NO_HINTS = Hints()


class Transcriber:
    """One thread for whisper, shared by every call of this process: the English model for
    English calls, the multilingual one for the others and for calls whose language is 'auto'."""

    def __init__(
        self,
        english: WhisperEngine,
        multilingual: WhisperEngine | None = None,
        languages: Collection[str] = (),
    ) -> None:
        self.english, self.multilingual = english, multilingual
        self.languages = tuple(languages)  # what 'auto' chooses among
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self.pending = 0

    def _run(self, audio: np.ndarray, language: str, hints: Hints) -> Transcript:
        vocabulary, said, cues = hints
        if language == "en" or self.multilingual is None:
            return self.english.transcribe(audio, "en", vocabulary=vocabulary, said=said, cues=cues)
        if language == "auto":
            return self.multilingual.transcribe(audio, None, self.languages)
        return self.multilingual.transcribe(audio, language, vocabulary=vocabulary, said=said, cues=cues)

    def quick(self, language: str) -> bool:
        """Whether this language's model is the small English one (~100 ms a turn): the multilingual
        model, or detecting the language over whisper's whole window, costs several times more."""
        return language == "en" or self.multilingual is None

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        """The words of ``audio``, with whisper primed by ``hints`` (see ``priming``)."""
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, self._run, audio, language, hints)
        finally:
            self.pending -= 1
