"""The answer's opening word, said the moment the caller's turn ends.

While the caller speaks, the LLM worker evaluates their words so far (a warm-up per partial
transcript); with ``agent.early_opener`` it also samples the answer's first word group on them, a
*peek* (``LlmRequest.peek_tokens``, ``LlamaEngine.peek``: the first token from the warm-up's last
step at no cost, up to three more at ~90 ms each on two cores in steps no answer waits for; a
newer partial's warm-up or the answer's request cuts it short, with what it has). When
the turn ends, the LLM still has to evaluate the words whisper added since that partial and the
template's tokens after them (7-19 tokens: 250-450 ms on two cores) before its first token. If
the peek opened with an acknowledgement ("Sure,", "Of course,": the lexicon's
``acknowledgements``, words that take the turn without answering it) and the caller's final words
go on from the words it was decoded on, the agent says it at once, from TTS's memory, and the LLM
continues the answer after it (``continue_from``), as a person says "Sure," while thinking.

Not an opener that answers ("Yes,", "No,", "I'm sorry,"): the words whisper adds at the end may
turn it. Not a peek decoded on less than half of the turn's words: it was an opener to the start
of what the caller said, not to what they asked.

A peek whose answer opens with a tool call (``<tool_call>``: "I need to move my appointment to
Friday" to the clinic's agent) says the agent's holding phrase instead ("One moment, let me
check."), where the call actor's agent serves tools and ``agent.early_hold`` is on: the caller
hears it as the turn ends instead of after the LLM's first token and ``agent.tool_hold_after_ms``
of the tool (about 1.4 s). It is said as the slow-tool holding phrase is, outside the LLM's
words: the LLM is asked as without it, and no later holding phrase follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from voxbus.actors.turns import words
from voxbus.engines.tool_calls import OPEN
from voxbus.lexicons import Lexicon

PEEK_TOKENS = 4  # "Of course," is three tokens in Qwen's vocabulary, "Absolutely," three
MIN_SHARE = 0.5  # of the turn's words the peek must have been decoded on
MIN_KEPT = 0.8  # of the peek's words (its last one aside) that the final must keep, in order
_FIRST_GROUP = re.compile(r"^\s*([^\W\d_][\w' ]{0,24}?[,.!])")
_BARE_WORDS = re.compile(r"[^\W\d_][\w' ]{0,24}")


@dataclass(frozen=True)
class Peek:
    of: str  # the caller's words so far that it was decoded on
    text: str  # what the LLM began its answer with (up to its first punctuation), or OPEN


@dataclass(frozen=True)
class Opening:
    """What the agent says the moment the turn ends: an acknowledgement (the LLM goes on after
    it) or, ``holding``, the holding phrase of a tool call to come (the LLM is asked as without it)."""

    text: str
    holding: bool = False


def acknowledgement(text: str, lexicon: Lexicon) -> str | None:
    """The opening word group of ``text`` ("Sure," of "Sure, I"), if it is one of the lexicon's
    acknowledgements; None otherwise. A peek that gave way after its first token ("Sure": the
    caller said more meanwhile) is one too, with a comma."""
    found = _FIRST_GROUP.match(text)
    group = found.group(1).strip() if found is not None else text.strip()
    if found is None and not _BARE_WORDS.fullmatch(group):
        return None
    said = words(group)
    if not said or not any(said == words(entry) for entry in lexicon.acknowledgements):
        return None
    return group if found is not None else f"{group},"


def goes_on_from(of: str, final: str) -> bool:
    """Whether the caller's final words continue the words the peek was decoded on: nearly all of
    those are in the final, in order (whisper writes a word or two of a turn differently once it
    hears the whole: "Hi, Mrs. Peter, well," then "Hi, Mrs. Peter Wells,"; a partial's last word
    is often cut short, "appoint"), and they are at least :data:`MIN_SHARE` of it."""
    before, after = words(of), words(final)
    if not before:
        return False
    blocks = SequenceMatcher(None, before, after, autojunk=False).get_matching_blocks()
    matched = sum(block.size for block in blocks)
    return matched >= MIN_KEPT * (len(before) - 1) and len(before) >= MIN_SHARE * len(after)


class EarlyOpener:
    """The latest peek of a call, and whether it opens the answer to the turn that just ended."""

    def __init__(self, lexicon: Lexicon, enabled: bool) -> None:
        self.lexicon, self.enabled = lexicon, enabled
        self.peek: Peek | None = None

    def wanted(self) -> tuple[str, ...]:
        """The openers it would say: a peek decodes on only while its words may still become one
        of them ("Of" of "Of course", compared without case; ``LlmRequest.peek_for``)."""
        return tuple(self.lexicon.acknowledgements) if self.enabled else ()

    def peeked(self, of: str, text: str) -> None:
        if self.enabled:
            self.peek = Peek(of, text)

    def for_turn(self, final: str, holding_phrase: str = "") -> Opening | None:
        """What to say now for the turn whose final words are ``final``, or None; either way the
        peek is used up (the next turn's words are peeked anew). ``holding_phrase``: said for a
        peek that opens with a tool call ("": none, the agent serves no tools or it is off)."""
        peek, self.peek = self.peek, None
        if peek is None or not goes_on_from(peek.of, final):
            return None
        if peek.text == OPEN:
            return Opening(holding_phrase, holding=True) if holding_phrase else None
        said = acknowledgement(peek.text, self.lexicon)
        return Opening(said) if said is not None else None
