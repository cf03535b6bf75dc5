"""Short clauses spoken from memory: the frames of "Sure," or "One moment, let me check." kept.

An answer's first clause decides when the caller hears anything, and the commonest first clauses
are a handful of short acknowledgements. Piper takes 100-200 ms on two cores for any clause; a
clause already spoken once comes back from here at once. Only short clauses are kept (the long
ones rarely repeat), at most ``entries`` of them, the least recently used dropped first; a
synthesis cut short (barge-in) is never kept. The TTS worker's one synthesis thread is the only
caller, so no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

from voxbus.engines.tts import VoiceEngine


def _key(text: str) -> str:
    """A clause as kept: spacing does not make it another clause."""
    return " ".join(text.split())


class CachedVoice:
    def __init__(self, voice: VoiceEngine, max_chars: int, entries: int, always: Sequence[str] = ()) -> None:
        """``always``: phrases kept once said, however long (an agent's holding phrases)."""
        self.voice, self.max_chars, self.entries = voice, max_chars, entries
        self.always = {_key(text) for text in always}
        self._frames: OrderedDict[str, list[bytes]] = OrderedDict()
        self.hits = 0

    def frames(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """The voice's 20 ms frames of ``text``, from memory when it was spoken before. Blocking."""
        key = _key(text)
        kept = self._frames.get(key)
        if kept is not None:
            self._frames.move_to_end(key)
            self.hits += 1
            for frame in kept:
                if cancelled():
                    return
                yield frame
            return
        spoken: list[bytes] = []
        for frame in self.voice.frames(text, cancelled):
            spoken.append(frame)
            yield frame
        if (len(key) <= self.max_chars or key in self.always) and spoken and not cancelled():
            self._keep(key, spoken)

    def learn(self, texts: Sequence[str]) -> None:
        """Speak ``texts`` now, into memory, whatever their length (a greeting, a holding phrase),
        before a caller waits for them. Blocking."""
        for text in texts:
            key = _key(text)
            if key and key not in self._frames:
                self._keep(key, list(self.voice.frames(text)))

    def _keep(self, key: str, frames: list[bytes]) -> None:
        if self.entries <= 0:
            return
        self._frames[key] = frames
        while len(self._frames) > self.entries:
            self._frames.popitem(last=False)

    def __len__(self) -> int:
        return len(self._frames)
