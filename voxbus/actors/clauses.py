"""Cutting streamed LLM text into clauses for TTS, so speech starts before the answer is complete.

The first clause is cut eagerly (at a comma, colon or semicolon as well as at a sentence end) because
it decides how soon the caller hears anything; later clauses are cut at sentence ends, which sound
more natural. A cut normally needs the whitespace after the punctuation, so "3.5" or "e.g." never
splits a number or an abbreviation; the first clause is also cut when its punctuation ends the text
so far and follows a plain word ("Paris." but not "3." or "Dr."), which saves waiting one token.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")
_ANY_END = re.compile(r"[.!?,;:]+[\"')\]]*\s+")
_MARKUP = re.compile(r"[*_#`~>|]+")
_ENDS_CLAUSE = re.compile(r"([^\W\d_]+)[.!?,;:]$")  # a word, in any alphabet
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "prof",
    "etc",
    "vs",
    "approx",
    "inc",
    "ltd",
    "no",
}


def speakable(text: str) -> str:
    """Drop markdown and collapse whitespace: what TTS reads aloud (dates and times are made
    speakable in the call's language as clauses go out, see voxbus.actors.spoken)."""
    return " ".join(_MARKUP.sub(" ", text).split())


class ClauseSplitter:
    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars
        self.buffer = ""
        self.emitted = 0

    def push(self, text: str) -> list[str]:
        """Add streamed text; returns the clauses that are now complete."""
        self.buffer += text
        clauses = []
        while True:
            pattern = _ANY_END if self.emitted == 0 else _SENTENCE_END
            cut = next(
                (
                    m.end()
                    for m in pattern.finditer(self.buffer)
                    if len(self.buffer[: m.end()].strip()) >= self.min_chars
                ),
                None,
            )
            if cut is None and self.emitted == 0 and self._ends_cleanly():
                cut = len(self.buffer)
            if cut is None:
                return clauses
            clause, self.buffer = speakable(self.buffer[:cut]), self.buffer[cut:]
            if clause:
                clauses.append(clause)
                self.emitted += 1

    def _ends_cleanly(self) -> bool:
        """The text so far ends with punctuation after a plain word, long enough for a clause."""
        text = self.buffer.rstrip("\"')] ")
        if len(text.strip()) < self.min_chars or text != self.buffer.rstrip(" "):
            return False
        match = _ENDS_CLAUSE.search(text)
        return bool(match) and len(match.group(1)) > 1 and match.group(1).lower() not in _ABBREVIATIONS

    def flush(self) -> str:
        """The rest, at the end of the generation."""
        rest, self.buffer = speakable(self.buffer), ""
        return rest
