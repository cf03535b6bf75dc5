"""An answer that says the agent acts ("Sure, I'll move it to Friday") is a tool call.

A small model often answers a request with the words of the action instead of the call: "Great,
I'll book your appointment for 9:00 on Friday." and nothing is booked (3 of the 11 requests of
``bench/tool_calls.py`` that Qwen2.5-1.5B answered without the call; all three are calls now).
The caller hangs up believing it done. So while tools are offered, the engine watches the free
text for an agent's promise to act, holding back the words that may still turn into one ("I'll
..." until its verb or the end of its clause); a promise is never spoken: from where it begins,
the engine decodes a call under the grammar of the tools that do such a thing (the calendar's for
"book", the transfer for "put you through"). English only, like the model's tool prompt; the
engine behind ``llm_url`` (a server) does not do it.
"""

from __future__ import annotations

import re
from typing import Any

from voxbus.actors.tools import CALL_CONTROL

# "I'll move", "I am going to cancel", "Let me book": the agent says it is about to do it. Not the
# past ("I've moved it": after the tool's result, that is the report) nor "I can" ("I can book
# 9:00 or 11:30": an offer)
_SUBJECT = r"(?:\bI(?:['’]ll| will| am going to|['’]m going to)|\b[Ll]et me)"
_ADVERBS = r"(?:\s+(?:now|just|also|go ahead and|quickly))*"
_SERVICE_VERBS = r"book|move|cancel|reschedule|change|check|look"
_TRANSFER_VERBS = r"transfer|put you through|connect"
PROMISE = re.compile(
    rf"{_SUBJECT}{_ADVERBS}\s+(?i:(?P<service>{_SERVICE_VERBS})|(?P<transfer>{_TRANSFER_VERBS}))\b"
)
_MAYBE = re.compile(r"(?:\bI\b|\b[Ll]et\b)")  # where a promise may be beginning
_CLAUSE = re.compile(r"[^.!?,;:]*$")
MAX_WORDS = 6  # "I'll go ahead and just move": a promise's verb comes within this many words
# the same phrases as PROMISE, word by word, to tell early that words can no longer become one
# ("I'm sorry", "I think", "I can": said at once instead of held back until the clause ends)
_SUBJECT_WORDS = (("i'll",), ("i", "will"), ("i", "am", "going", "to"), ("i'm", "going", "to"), ("let", "me"))
_ADVERB_WORDS = ("now", "just", "also", "go", "ahead", "and", "quickly")
_VERB_WORDS = (
    "book",
    "move",
    "cancel",
    "reschedule",
    "change",
    "check",
    "look",
    "transfer",
    "put",
    "connect",
)


def promise(said: str, since: int, tools: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]] | None:
    """Where the first promise after ``since`` begins, and the offered tools that keep it; None if
    there is none, or no offered tool does what it promises."""
    for found in PROMISE.finditer(said, since):
        kept = [t for t in tools if _keeps(t["function"]["name"], found.group("transfer") is not None)]
        if kept:
            return found.start(), kept
    return None


def _keeps(name: str, transfer: bool) -> bool:
    return CALL_CONTROL.get(name) == "transfer" if transfer else name not in CALL_CONTROL


def undecided(said: str) -> int:
    """How many characters at the end may still become a promise: from an "I" or a "Let" in the
    clause being written, until its verb has had time to come."""
    clause = _CLAUSE.search(said)
    tail = clause.group() if clause else ""
    for begun in _MAYBE.finditer(tail):  # the earliest that is recent enough and may still be one
        words = tail[begun.start() :]
        if len(words.split()) <= MAX_WORDS and may_become_promise(words):
            return len(tail) - begun.start()
    return 0


def may_become_promise(words: str) -> bool:
    """Can ``words`` (from an "I" or a "Let") still grow into a promise? The last word may be
    unfinished unless a space follows it."""
    said = [w.strip("\"'").replace("’", "'").lower() for w in words.split()]
    unfinished = bool(words) and not words[-1].isspace()
    return any(_may_follow(said, subject, unfinished) for subject in _SUBJECT_WORDS)


def _may_follow(said: list[str], subject: tuple[str, ...], unfinished: bool) -> bool:
    """``said`` is the start of: ``subject``, any adverbs, a verb of acting."""
    for i, word in enumerate(said):
        options = (subject[i],) if i < len(subject) else _VERB_WORDS + _ADVERB_WORDS
        partial = unfinished and i == len(said) - 1
        if not any(o.startswith(word) if partial else o == word for o in options):
            return False
        if i >= len(subject) and word in _VERB_WORDS:
            return True  # the verb came: a promise, which PROMISE takes from here
    return True
