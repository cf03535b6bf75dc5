"""The level of the agent's audio whose echo may be in the caller frame arriving now, and the
level that echo is expected at.

The STT worker's echo gate zeroes a caller frame quieter than the echo expected in it plus
``turn.echo_margin_db`` or, until the line's echo is measured, than the agent's level plus
``turn.echo_gate_db`` (negative): it is taken for the agent's echo, not for the caller. What that
level is decides what the caller can say over the agent. The loudest agent frame of a window as
long as the echo's longest round trip is always safe, but it is the loudest vowel of the last half
second: a caller's quiet onset ("St-" of "Stop.") falls under it and is lost, even where the agent
frame that echoes right now was a pause between two words.

So the echo's delay is measured, as echo cancellers do (by the envelope's correlation here, not
the waveform's: levels of 20 ms frames, cheap enough for pjmedia's clock thread): every
:data:`ESTIMATE_EVERY` frames the played and heard levels of the last :data:`HISTORY` frames are
correlated at each delay the window allows, and a delay that explains the heard level well enough
(:data:`MIN_CORRELATION`, over frames where the agent spoke) is kept. The reference is then the
loudest of the frames played one frame either side of that delay (jitter moves the echo by a
frame); until a delay is found (the first seconds, a line with no echo to measure, the caller
talking throughout), the window's loudest frame.

The same correlation gives the line's echo loss (how far under the agent's level its echo comes
back): a handset's echo 35 dB down lets a caller speak 30 dB under the agent and be heard, a
speakerphone's 8 dB down is gated as the echo it is, where a fixed ``turn.echo_gate_db`` would take
the first caller for an echo and the second echo for a caller.
"""

from __future__ import annotations

import numpy as np

from voxbus.media.frames import level_db, to_float

HISTORY = 150  # frames correlated: 3 s of the call
ESTIMATE_EVERY = 25  # frames between two estimates: 0.5 s
MIN_CORRELATION = 0.6  # the played level explains the heard one at this delay (Pearson, in dB)
MIN_FRAMES = 40  # agent frames the correlation needs (0.8 s of the agent speaking)
SPOKE_DB = -50.0  # a played frame at least this loud is the agent speaking
SILENT_DB = -60.0  # the reference when nothing louder was played: no echo to gate
SPREAD = 1  # frames either side of the delay whose echo may land in this frame (jitter)


class FarEndLevel:
    """The agent's audio played to one caller and the audio heard back from them, frame by frame;
    ``db()``: the reference for the echo gate (None while the agent has been silent). ``window``
    frames must outlast the echo's longest round trip (both jitter buffers included);
    ``measure_delay`` False keeps the window's loudest frame as the reference."""

    def __init__(self, window: int = 12, measure_delay: bool = True) -> None:
        self.window = window
        self.measure_delay = measure_delay
        size = HISTORY + window + SPREAD + 1
        self.played_db = np.full(size, -120.0)
        self.heard_db = np.full(size, np.nan)  # NaN: no frame heard in that tick
        self.ticks = 0  # frames played so far: the clock both directions are placed on
        self.heard_count = 0
        self.delay: int | None = None  # frames from a played frame to its echo, once measured
        self.loss_db: float | None = None  # the echo's level against the agent's at that delay

    def played(self, pcm: bytes) -> None:
        self.played_db[self.ticks % len(self.played_db)] = level_db(to_float(pcm))
        self.ticks += 1
        self.heard_db[self.ticks % len(self.heard_db)] = np.nan  # until a frame is heard in this tick

    def heard(self, pcm: bytes) -> None:
        """A frame from the caller, as received (before any canceller): what the delay is measured on."""
        if not self.measure_delay:
            return
        self.heard_db[self.ticks % len(self.heard_db)] = level_db(to_float(pcm)) if pcm else np.nan
        self.heard_count += 1
        if self.heard_count % ESTIMATE_EVERY == 0 and self.ticks > HISTORY + self.window:
            measured = self._estimate()
            if measured is not None:  # else the last delay stands (the caller talking over the agent)
                self.delay, self.loss_db = measured

    def db(self) -> float | None:
        if self.delay is None:
            level = float(self._recent(0, self.window).max())
        else:
            level = float(self._recent(self.delay - SPREAD, self.delay + SPREAD + 1).max())
        return None if level < SILENT_DB else round(level, 1)

    def echo_db(self) -> float | None:
        """The level the agent's echo is expected at in the frame heard now: the agent's level at
        the measured delay plus the line's measured echo loss; None until both are measured, or
        while the agent is silent."""
        return self.levels()[1]

    def levels(self) -> tuple[float | None, float | None]:
        """``db()`` and ``echo_db()`` at once, as each caller frame is tagged (one look at the
        played levels on pjmedia's clock thread, not two)."""
        reference = self.db()
        if reference is None or self.loss_db is None:
            return reference, None
        return reference, round(reference + self.loss_db, 1)

    def _recent(self, start: int, stop: int) -> np.ndarray:
        """Played levels of the frames ``start`` to ``stop`` - 1 ticks ago (0: the frame whose echo
        could arrive in the frame being heard now)."""
        ticks = self.ticks - 1 - np.arange(max(start, 0), max(stop, 1))
        return self.played_db[ticks % len(self.played_db)]

    def _estimate(self) -> tuple[int, float] | None:
        """The delay, in frames, at which the played level best explains the heard one, and the
        echo's loss there (the median of heard less played level: robust to the caller speaking
        over a few of those frames, and an overestimate where the echo is under the line's noise,
        which gates more, not less); None when no delay explains it well enough (no echo, or the
        caller speaking over most of it)."""
        size = len(self.played_db)
        now = self.ticks  # the frame being heard now sits at ticks (see heard)
        heard_at = (now - np.arange(HISTORY)) % size
        heard = self.heard_db[heard_at]
        best: tuple[int, float] | None = None
        best_corr = MIN_CORRELATION
        for lag in range(self.window):
            played = self.played_db[(now - np.arange(HISTORY) - 1 - lag) % size]
            spoke = (played >= SPOKE_DB) & ~np.isnan(heard)
            if int(spoke.sum()) < MIN_FRAMES:
                continue
            x, y = played[spoke], heard[spoke]
            if float(x.std()) < 1e-6 or float(y.std()) < 1e-6:
                continue
            corr = float(np.corrcoef(x, y)[0, 1])
            if corr > best_corr:
                best, best_corr = (lag, float(np.median(y - x))), corr
        return best
