"""What the caller's words say about turn-taking: is the phrase finished, is it only a
backchannel, is it the agent's own voice coming back.

Plain word lists per language (:class:`voxbus.lexicons.Lexicon`), not a model: they cost nothing on
the critical path, they are easy to tune for a deployment, and whisper's punctuation alone is not
enough (it ends "I'd like to book a table for" with a full stop).
"""

from __future__ import annotations

import re

from voxbus.lexicons import Lexicon

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters of any alphabet, apostrophes inside
_TRAILING_OPEN = ("...", "…", ",", "-", "—", ":", ";")
# a hum, in whisper's spellings of "mm-hmm" over a phone line: "M-N-N.", "MMs.", "Mmm", "Hm":
# letters m, n and h only (an m or an n among them), whatever the language
_HUM = re.compile(r"[hmn]*[mn][hmn]*s?")


def words(text: str) -> list[str]:
    """Lower-case words; hyphens split ("uh-huh" -> "uh", "huh"), apostrophes stay."""
    return _WORD.findall(text.lower().replace("’", "'"))


def _strip_phrases(tokens: list[str], phrases: list[str]) -> list[str]:
    """Remove every occurrence of the given (multi-word) phrases, longest first."""
    patterns = sorted((words(p) for p in phrases), key=len, reverse=True)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for pattern in patterns:
            if pattern and tokens[i : i + len(pattern)] == pattern:
                i += len(pattern)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _without_leading(tokens: list[str], phrases: list[list[str]]) -> list[str]:
    """``tokens`` from the first word that does not begin one of ``phrases``."""
    start, found = 0, True
    while found:
        found = False
        for phrase in phrases:
            if phrase and tokens[start : start + len(phrase)] == phrase:
                start, found = start + len(phrase), True
                break
    return tokens[start:]


def _cue_at_start(spoken: list[str], phrases: list[str]) -> bool:
    """Whether one of ``phrases`` is the first or second word(s) of ``spoken``."""
    cues = [cue for cue in map(words, phrases) if cue]
    return any(spoken[i : i + len(cue)] == cue for cue in cues for i in (0, 1))


def content_words(text: str, lexicon: Lexicon) -> list[str]:
    """The words that are neither backchannels, nor fillers, nor hums."""
    kept = _strip_phrases(words(text), lexicon.backchannels + lexicon.fillers)
    return [word for word in kept if not _HUM.fullmatch(word)]


def is_backchannel(text: str, lexicon: Lexicon) -> bool:
    """True for "uh-huh", "yeah, okay", "mm" -- and for no words at all (a cough, a noise)."""
    return not content_words(text, lexicon)


def looks_unfinished(text: str, lexicon: Lexicon) -> bool:
    """True when the phrase reads as cut short: it trails off ("...", ",") or ends with a filler
    or a word that needs a continuation ("for", "and", "the", "I'd")."""
    stripped = text.strip()
    if stripped.endswith(_TRAILING_OPEN):
        return True
    tokens = words(stripped)
    if not tokens:
        return False
    for phrase in lexicon.fillers + lexicon.continuations:
        pattern = words(phrase)
        if pattern and tokens[-len(pattern) :] == pattern:
            return True
    return False


def heard_cut_off(head: str) -> bool:
    """Whether whisper wrote the first words as cut off: trailing away (",", "...", "-") or in lower
    case, as the continuation of something. Over every turn-taking run on file, 4 of the 10
    interruptions the fast path resumed had such a head ("uh,", "Uh...", "uh."), and 2 of 51
    backchannels and noises ("M-M-", a cough's "Uh, uh, uh,"). A hum is not cut off however it
    trails: it is a backchannel's sound, never the head of words on file ("M-M-" for "Mm-hmm.",
    twice: the agent held 0.7 s while it waited); words that follow it still stop the agent, late."""
    head = head.strip()
    if is_hum(head):
        return False
    return head[:1].islower() or not head.endswith((".", "!", "?")) or head.endswith("...")


def head_resumes(head: str, lexicon: Lexicon) -> bool:
    """The fast path's rule: the first words heard over the held agent let it go on when they are
    a backchannel that whisper did not write as cut off (else the whole words are awaited)."""
    return bool(words(head)) and is_backchannel(head, lexicon) and not heard_cut_off(head)


def is_hum(text: str) -> bool:
    """Only hums, in whisper's spellings of "mm-hmm" over a phone line ("M-M-", "Mm.", "Hmm...")."""
    heard = words(text)
    return bool(heard) and all(_HUM.fullmatch(word) for word in heard)


MIN_STEM = 4  # letters a word shares with the agent's to count as its echo ("north", "northern")


def is_echo(text: str, agent_said: str, overlap: float) -> bool:
    """True when most of the caller's words are words the agent itself just said: its own voice
    coming back through the caller's phone."""
    heard = words(text)
    if not heard:
        return False
    said = set(words(agent_said))
    return sum(said_by_agent(w, said) for w in heard) / len(heard) >= overlap


def said_by_agent(word: str, said: set[str]) -> bool:
    """Whether ``word`` is one of the agent's ``said`` words, or its beginning or stem: whisper
    cuts the echo of a word at the gate's edges ("The Northern Lights" came back as "the north of
    the")."""
    if word in said:
        return True
    return len(word) >= MIN_STEM and any(
        w.startswith(word) or word.startswith(w) for w in said if len(w) >= MIN_STEM
    )


def heard_part(clauses: list[tuple[str, int]], played_frames: int) -> str:
    """The text the caller actually heard, from each spoken clause's length in frames and how
    many frames were played: whole clauses, then the share of the next clause's words."""
    heard: list[str] = []
    left = played_frames
    for text, frames in clauses:
        if left <= 0:
            break
        if frames <= left:
            heard.append(text)
            left -= frames
            continue
        clause_words = text.split()
        part = clause_words[: int(len(clause_words) * left / frames)]
        if part:
            heard.append(" ".join(part))
        break
    return " ".join(heard)


def judge_barge_in(
    text: str, agent_said: str, lexicon: Lexicon, min_words: int, overlap: float, aside_words: int = 0
) -> str | None:
    """Why words spoken over the agent do *not* interrupt it, or None if they do."""
    heard = words(text)
    if not heard:
        return "no words (a noise or a cough)"
    # "Stop, stop.", "Wait, ..." or "No, wait" cut in whatever the agent just said; a cue later in
    # the phrase ("...would not stop") may be the agent's own echo
    # (after any fillers: whisper writes a soft "Wait." as "Uh, uh, wait.")
    spoken = _without_leading(heard, [words(f) for f in lexicon.fillers])
    if _cue_at_start(spoken, lexicon.interruptions):
        return None
    if is_echo(text, agent_said, overlap):
        return "the agent's own voice (echo)"
    if _cue_at_start(spoken, lexicon.misheard_interruptions):  # "Top." for "Stop." on a phone line
        return None
    found = content_words(text, lexicon)
    if not found:
        return "a backchannel"
    distinct = len(set(found))  # a stutter ("I-I-I", a syllable misheard four times) is one word
    if distinct < min_words:
        return f"{distinct} words, fewer than turn.barge_in_min_words={min_words}"
    if distinct <= aside_words:
        # whisper hears a short "I see" or "mm-hmm" over a phone line as "Bye, bye" or "And then";
        # a caller who means to cut in says a cue or more words, or goes on speaking
        return f"{distinct} words and no cue to stop: an aside (turn.barge_in_aside_words={aside_words})"
    return None
