"""A caller that reacts to the agent: lines spoken after the agent's reply, over it (to interrupt
or to say "uh-huh"), or right after the caller's previous line (a hesitation), with the exact
tick at which each line started and ended.

The SIP caller drives a :class:`DialoguePlayer` from pjmedia's clock thread, one call per 20 ms
tick: ``heard`` with whether the agent's audio in that tick was loud, then ``frame`` for the
caller audio to send. Everything is on that one clock, so a line's end and the agent's first
audio heard after it are measured in the same ticks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from voxbus.engines.tts import VoiceEngine
from voxbus.media.frames import FRAME_BYTES, FRAME_MS, SILENCE
from voxbus.media.script import trim_silence

When = Literal["after_reply", "during_reply", "after_line", "after_cue"]
QUIET_AFTER_REPLY_S = 1.2  # the agent counts as done after this much quiet


class DialogueLine(BaseModel):
    text: str = Field(description="what the caller says (synthesised), or a sound: 'noise:cough'")
    when: When = Field(
        default="after_reply",
        description="after_reply: once the agent has answered and gone quiet; during_reply: once "
        "the agent's next reply is heard; after_line: right after the caller's previous line; "
        "after_cue: once the test cues it (DialoguePlayer.cue), after the previous line began",
    )
    gap_s: float = Field(default=0.6, ge=0, description="wait after the trigger")
    role: Literal["question", "interrupt", "backchannel", "noise", "hesitation"] = "question"


class Dialogue(BaseModel):
    lines: list[DialogueLine]
    settle_s: float = Field(default=4.0, description="hang up after this much quiet after the last line")
    reply_timeout_s: float = Field(
        default=25.0,
        gt=0,
        description="a line waiting for a reply (or a cue) that never comes goes ahead after this",
    )


class LineTiming(BaseModel):
    text: str
    role: str
    start_tick: int
    end_tick: int  # first tick after the line's last sample

    @property
    def start_s(self) -> float:
        return self.start_tick * FRAME_MS / 1000

    @property
    def end_s(self) -> float:
        return self.end_tick * FRAME_MS / 1000


def cough(seconds: float = 0.25, seed: int = 3) -> bytes:
    """A cough-like burst: shaped noise, loud and short, no voicing."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    envelope = np.exp(-np.linspace(0, 6, n)) * np.minimum(1, np.linspace(0, 25, n))
    noise = np.convolve(rng.normal(0, 1, n), np.ones(6) / 6, mode="same")
    return (np.clip(noise * envelope * 9000, -32767, 32767)).astype(np.int16).tobytes()


def render_line(line: DialogueLine, engine: VoiceEngine) -> list[bytes]:
    if line.text.startswith("noise:"):
        pcm = cough()
    else:
        pcm = trim_silence(np.frombuffer(b"".join(engine.frames(line.text)), dtype=np.int16)).tobytes()
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


class DialoguePlayer:
    """Plays rendered lines on their triggers; not thread-safe (one clock thread drives it)."""

    def __init__(self, dialogue: Dialogue, rendered: list[list[bytes]]) -> None:
        self.lines, self.rendered = dialogue.lines, rendered
        self.settle_ticks = int(dialogue.settle_s * 1000 / FRAME_MS)
        self.reply_timeout_ticks = int(dialogue.reply_timeout_s * 1000 / FRAME_MS)
        self.timings: list[LineTiming] = []
        self.next_line = 0
        self.playing: list[bytes] = []
        self.position = 0
        self.start_at: int | None = None
        self.last_end = 0  # tick at which the caller's previous line ended
        self.last_loud = -1
        self.loud_since_line = False  # agent audio heard since the caller's last line ended
        self.first_loud_since_line: int | None = None
        self.cued = False  # set from another thread: a bool, read by the clock thread

    def cue(self) -> None:
        """Something the caller waits for has happened (a test's event: the agent began an
        answer): a line ``after_cue`` may start."""
        self.cued = True

    def heard(self, tick: int, loud: bool) -> None:
        if loud:
            self.last_loud = tick
            if not self.loud_since_line and not self.playing:
                self.loud_since_line = True
                self.first_loud_since_line = tick

    def frame(self, tick: int) -> bytes:
        if self.playing:
            pcm = self.playing[self.position]
            self.position += 1
            if self.position == len(self.playing):
                self.playing = []
                self.last_end = tick + 1
                self.timings[-1].end_tick = tick + 1
                self.loud_since_line, self.first_loud_since_line = False, None
            return pcm
        if self.next_line < len(self.lines):
            if self.start_at is None:
                self.start_at = self._trigger(tick)
            if self.start_at is not None and tick >= self.start_at:
                return self._start(tick)
        return SILENCE

    def _trigger(self, tick: int) -> int | None:
        """The tick at which the next line should start, once its trigger has happened."""
        line = self.lines[self.next_line]
        gap = int(line.gap_s * 1000 / FRAME_MS)
        timeout = tick - self.last_end > self.reply_timeout_ticks
        if line.when == "after_line":
            return self.last_end + gap
        if line.when == "after_cue":
            return tick + gap if self.cued or timeout else None
        if line.when == "during_reply":
            if self.first_loud_since_line is not None:
                return self.first_loud_since_line + gap
            return tick + gap if timeout else None
        quiet = (tick - self.last_loud) * FRAME_MS / 1000 >= QUIET_AFTER_REPLY_S
        if (self.loud_since_line and quiet) or timeout:
            return tick + gap
        return None

    def _start(self, tick: int) -> bytes:
        line = self.lines[self.next_line]
        self.playing, self.position = self.rendered[self.next_line], 0
        self.timings.append(LineTiming(text=line.text, role=line.role, start_tick=tick, end_tick=tick))
        self.cued = False  # the next line's cue must come after this one began
        self.next_line += 1
        self.start_at = None
        return self.frame(tick)

    def said_all(self) -> bool:
        """Every line has been said to its end."""
        return self.next_line >= len(self.lines) and not self.playing

    def finished(self, tick: int) -> bool:
        """All lines said, and the agent quiet for settle_s since."""
        if not self.said_all():
            return False
        return tick - max(self.last_loud, self.last_end) > self.settle_ticks
