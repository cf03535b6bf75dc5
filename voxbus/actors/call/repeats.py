"""An answer that opens with the greeting again: the copy is not said.

A small model copies what it said before: the bundled 1.5B model opened 8 of the 34 answers of
``bench/tool_calls.py`` and most answers of the clinic's benchmark calls with its greeting ("Hello,
this is Anna at Bright Smile dental."), which the caller heard as the call began. The greeting
folded into the call's context instead of its history stopped that, but the model then called
tools on "Hello?" and "My dog is sick." (hang-up, booking): so the greeting stays what the agent
said, and its first sentence repeated at the start of an answer is cut from the answer's stream,
unspoken and out of the history (which would show the model its own copy to copy again).
"""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (all of it if it has one sentence)."""
    return SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()


def _plain(text: str) -> str:
    return " ".join(text.lower().split())


class OpeningRepeat:
    """Cuts ``sentence`` from the start of a stream of answer text, holding back what may still
    turn out to be it. An answer that is nothing but the copy keeps it (silence would be worse)."""

    def __init__(self, sentence: str) -> None:
        self.sentence = _plain(sentence)
        self.held = ""
        self.cut: str | None = None  # the copy, cut: given back if the answer ends with nothing else
        self.done = not self.sentence

    def push(self, text: str) -> str:
        """The text that may be spoken now."""
        if self.done:
            return text
        self.held += text
        if self.cut is not None:  # cut: whatever follows, once it is more than spaces
            rest = self.held.lstrip()
            if not rest:
                return ""
            self.done = True
            return rest
        lead = _plain(self.held)
        if len(lead) < len(self.sentence) and self.sentence.startswith(lead):
            return ""  # may still be the copy
        if lead.startswith(self.sentence):
            end = _end_of(self.held, len(self.sentence))
            self.cut, self.held = self.held[:end], self.held[end:]
            return self.push("")
        self.done = True
        return self.held

    def flush(self) -> str:
        """The answer ended: what is still held back."""
        if self.done:
            return ""
        self.done = True
        return self.cut if self.cut is not None and not self.held.strip() else self.held


def _end_of(text: str, plain_chars: int) -> int:
    """Where in ``text`` the first ``plain_chars`` characters of its plain form end."""
    count, previous_space = 0, True
    for i, char in enumerate(text):
        space = char.isspace()
        if not (space and previous_space):  # runs of spaces count once, leading ones not at all
            count += 1
        previous_space = space
        if count == plain_chars:
            return i + 1
    return len(text)
