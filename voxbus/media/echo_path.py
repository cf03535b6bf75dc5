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
talking throughout), the window's loudest frame. A delay holds only while each estimate confirms
it: the jitter buffers at both ends change it as they adapt (measured on a loaded machine: 19
frames, then 11 a second later, then 7), and a stale delay let the echo of the agent's words
through the gate, which whisper wrote as the caller's ("The field occurred.") and the agent was
cut off. An estimate that finds no delay falls back to the window's loudest, with the line's loss.

The same correlation gives the line's echo loss (how far under the agent's level its echo comes
back): a handset's echo 35 dB down lets a caller speak 30 dB under the agent and be heard, a
speakerphone's 8 dB down is gated as the echo it is, where a fixed ``turn.echo_gate_db`` would take
the first caller for an echo and the second echo for a caller.

A line that sends nothing back above its own noise has no delay to find, but its loss is known all
the same: the heard level stays :data:`NO_ECHO_DB` or more under the agent's. Its gate then sits at
the line's noise, not 16 dB under the loudest agent frame of the last 600 ms: that old fallback
took the quiet "St-" of a caller's "Stop," said just after the agent was held (whisper heard
"Duh.") and then the whole of the next "stop." (the VAD never reached its threshold).
Not once an echo has been measured on the line, though: then frames quiet under the agent are its
pauses (a short word between long silences, around a hold, looks exactly like a silent line from
here), and the measured loss stands.

Frames louder than the agent's loudest of the window less :data:`DOUBLE_TALK_DB` are the caller
(Geigel's double-talk rule, as line echo cancellers use it: no line returns the agent's voice less
than 6 dB down) and are left out of both estimates.
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
DOUBLE_TALK_DB = -6.0  # a heard frame louder than the agent's loudest plus this is the caller
NO_ECHO_DB = -40.0  # heard this far under the agent's loudest (3 frames in 4): no echo to find


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
        self.echo_found = False  # a delay was measured once: this line has an echo

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
        # from the call's first words on, not once HISTORY is full: a greeting of 1.7 s was over
        # before the first estimate, and the first answer was gated by its loudest frame for its
        # first 2.6 s (a soft "Wait." 0.6 s into it never reached the VAD)
        if self.heard_count % ESTIMATE_EVERY == 0 and self.ticks > self.window:
            measured = self._estimate()
            # no delay confirmed: the whole window until it is again. "Nothing comes back" from a
            # line whose echo was measured is the agent's pauses, not the line (a few short words
            # in long silences, as around a hold, read as a loss of -54 dB on a -20 dB line, and
            # the gate let the echo through for 5 s): the measured loss stands
            if measured is None or (measured[0] is None and self.echo_found):
                self.delay = None
            else:
                self.delay, self.loss_db = measured
                self.echo_found = self.echo_found or measured[0] is not None

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

    def _estimate(self) -> tuple[int | None, float] | None:
        """The delay, in frames, at which the played level best explains the heard one, and the
        echo's loss there (the median of heard less played level: robust to the caller speaking
        over a few of those frames, and an overestimate where the echo is under the line's noise,
        which gates more, not less); or, where no delay explains it but the line sends back nothing
        near the agent's level, no delay and that bound on the loss (:meth:`_under_noise`); None
        when neither holds (the caller speaking over most of it, an echo that does not follow)."""
        size = len(self.played_db)
        now = self.ticks  # the frame being heard now sits at ticks (see heard)
        heard = self.heard_db[(now - np.arange(HISTORY)) % size]
        played = np.stack(  # row lag: the level played lag frames before each heard frame
            [self.played_db[(now - np.arange(HISTORY) - 1 - lag) % size] for lag in range(self.window)]
        )
        loudest = played.max(axis=0)
        single_talk = ~np.isnan(heard) & (loudest >= SPOKE_DB) & (heard < loudest + DOUBLE_TALK_DB)
        best: tuple[int | None, float] | None = None
        best_corr = MIN_CORRELATION
        for lag in range(self.window):
            spoke = single_talk & (played[lag] >= SPOKE_DB)
            if int(spoke.sum()) < MIN_FRAMES:
                continue
            x, y = played[lag][spoke], heard[spoke]
            if float(x.std()) < 1e-6 or float(y.std()) < 1e-6:
                continue
            corr, loss = float(np.corrcoef(x, y)[0, 1]), float(np.median(y - x))
            if corr > best_corr and loss <= DOUBLE_TALK_DB:  # louder: the caller in step, not echo
                best, best_corr = (lag, loss), corr
        return best if best is not None else self._under_noise(heard[single_talk] - loudest[single_talk])

    @staticmethod
    def _under_noise(gaps: np.ndarray) -> tuple[None, float] | None:
        """No delay, and the loss bounded by how far under the agent's loudest the line's frames
        stay (``gaps``, in dB, frames where the agent spoke), where three in four stay
        :data:`NO_ECHO_DB` under it: any echo is below the line's noise."""
        if len(gaps) < MIN_FRAMES:
            return None
        bound = float(np.percentile(gaps, 75))
        return (None, bound) if bound <= NO_ECHO_DB else None
