"""Cutting streamed LLM text into clauses for TTS, so speech starts before the answer is complete.

The first clause is cut eagerly (at a comma, colon or semicolon as well as at a sentence end) because
it decides how soon the caller hears anything; later clauses are cut at sentence ends, which sound
more natural. A cut normally needs the whitespace after the punctuation, so "3.5" or "e.g." never
splits a number or an abbreviation; the first clause is also cut when its punctuation ends the text
so far and follows a plain word ("Paris." but not "3." or "Dr."), which saves waiting one token.

A first clause with no punctuation after ``first_words`` words is cut before the next word that
opens a word group (a preposition, conjunction or verb of the call's language: "Please bring your
insurance card | with you."), so that a long first sentence does not keep the caller waiting for
its full stop, token by token (~50 ms each on two cores). The rest of that sentence is then cut
eagerly as well, at its next comma or, after twice as many words, at the next word group again:
waiting for its full stop left the agent silent in mid-sentence ("Life is made up | ... of many
different things, such as food, water, shelter, and work." paused 0.75 s after "made up"; "A car
engine works" is said in about a second, "by converting chemical energy from fuel into mechanical
energy to move the car forward." takes the LLM two).

A first clause of one or two plain words ("Sure,", "Of course,", "Got it.") is cut however short:
it is a word group of its own in speech, the commonest start of an answer, and its audio is usually
known already (voxbus.engines.voice_cache), so the caller hears the agent one sentence sooner. The
clause after it is then cut eagerly too (at a comma, or at its sentence's end however short), so
that the next words follow before the short one has been said.
"""

from __future__ import annotations

import re

from voxbus.lexicons import TITLES

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")
_ANY_END = re.compile(r"[.!?,;:]+[\"')\]]*\s+")
_ENDS_SENTENCE = re.compile(r"[.!?]+[\"')\]]*$")
_MARKUP = re.compile(r"[*_#`~>|]+")
_ENDS_CLAUSE = re.compile(r"([^\W\d_]+)[.!?,;:]$")  # a word, in any alphabet
_WORD = r"[^\W\d_]+(?:['’][^\W\d_]+)?"
_PLAIN = re.compile(rf"{_WORD}(?:-{_WORD})*")  # "card", "you're", "check-up": no digits, no punctuation
_OPENER = re.compile(rf"{_WORD}(?: {_WORD})?[,.!]")  # "Sure," "Of course," "You're welcome!"
_ABBREVIATIONS = TITLES | {"etc", "vs", "approx", "inc", "ltd", "no"}


def speakable(text: str) -> str:
    """Drop markdown and collapse whitespace: what TTS reads aloud (dates and times are made
    speakable in the call's language as clauses go out, see voxbus.actors.spoken)."""
    return " ".join(_MARKUP.sub(" ", text).split())


def is_opener(text: str) -> bool:
    """One or two plain words and a comma, full stop or exclamation mark, not an abbreviation."""
    if not _OPENER.fullmatch(text):
        return False
    last = text[:-1].split()[-1]
    return len(last) > 1 and last.lower() not in _ABBREVIATIONS


class ClauseSplitter:
    def __init__(
        self,
        min_chars: int,
        openers: bool = True,
        first_words: int = 0,
        group_starts: frozenset[str] = frozenset(),
    ) -> None:
        self.min_chars, self.openers = min_chars, openers
        self.first_words, self.group_starts = first_words, group_starts
        self.buffer = ""
        self.emitted = 0
        self.continues = False  # the last clause was an opener or a word group: the next is eager too
        self.at_group = False  # the last clause ended at a word group: the next may too

    def push(self, text: str) -> list[str]:
        """Add streamed text; returns the clauses that are now complete."""
        self.buffer += text
        clauses = []
        while True:
            eager = self.emitted == 0 or self.continues
            pattern = _ANY_END if eager else _SENTENCE_END
            cut = next(
                (m.end() for m in pattern.finditer(self.buffer) if self._long_enough(self.buffer[: m.end()])),
                None,
            )
            if cut is None and eager and self._ends_cleanly():
                cut = len(self.buffer)
            at_group = False
            if cut is None and (self.emitted == 0 or self.at_group):
                cut = self._word_group_end(self.first_words * (1 if self.emitted == 0 else 2))
                at_group = cut is not None
            if cut is None:
                return clauses
            clause, self.buffer = speakable(self.buffer[:cut]), self.buffer[cut:]
            if clause:
                clauses.append(clause)
                short_opener = self.emitted == 0 and len(clause) < self.min_chars
                self.continues, self.at_group = at_group or short_opener, at_group
                self.emitted += 1

    def _long_enough(self, text: str) -> bool:
        """A clause of ``min_chars`` at least, the short opener of an answer, or the whole sentence
        that follows an opener or a word-group cut ("Sure," "I can help.")."""
        text = text.strip()
        if len(text) >= self.min_chars:
            return True
        if self.emitted == 0:
            return self.openers and is_opener(text)
        return self.continues and _ENDS_SENTENCE.search(text) is not None

    def _word_group_end(self, words: int) -> int | None:
        """Where a long unpunctuated clause can end: before a word that opens a word group,
        ``words`` words in at least, after a word that does not itself need the next one
        ("the", "for"); None until then (and with ``first_words`` 0)."""
        if not self.first_words:
            return None
        spans = [(m.start(), m.group().lower()) for m in re.finditer(r"\S+", self.buffer)]
        complete = spans if self.buffer[-1:].isspace() else spans[:-1]  # the last may still grow
        for i in range(words, len(complete)):
            (start, word), before = complete[i], complete[i - 1][1]
            opens = word in self.group_starts and before not in self.group_starts
            if opens and _PLAIN.fullmatch(before) and self._long_enough(self.buffer[:start]):
                return start
        return None

    def _ends_cleanly(self) -> bool:
        """The text so far ends with punctuation after a plain word, long enough for a clause."""
        text = self.buffer.rstrip("\"')] ")
        if not self._long_enough(text) or text != self.buffer.rstrip(" "):
            return False
        match = _ENDS_CLAUSE.search(text)
        return bool(match) and len(match.group(1)) > 1 and match.group(1).lower() not in _ABBREVIATIONS

    def flush(self) -> str:
        """The rest, at the end of the generation."""
        rest, self.buffer = speakable(self.buffer), ""
        return rest
