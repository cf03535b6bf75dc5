"""Streaming voice activity detection: Silero VAD (the ONNX model shipped inside faster-whisper).

The model is run once per 32 ms window with its LSTM state carried between windows (about 0.15 ms
a window on this CPU). Raw probabilities flicker, so :class:`SpeechGate` smooths them with
hysteresis (start, pause, resume, end).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

WINDOW = 512  # samples at 16 kHz: 32 ms, the window Silero is trained on
CONTEXT = 64
WINDOW_MS = 32


def silero_model_path() -> Path:
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


class SileroStream:
    """Speech probability per 32 ms window of a continuous 16 kHz stream."""

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(model_path or silero_model_path()),
            providers=["CPUExecutionProvider"],
            sess_options=opts,
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[float]:
        """Feed float32 samples; returns the probability of each completed window."""
        self._pending = np.concatenate([self._pending, samples])
        probs: list[float] = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            batch = np.concatenate([self._context, window])[None, :]
            out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
            self._context = window[-CONTEXT:]
            probs.append(float(np.asarray(out).reshape(-1)[0]))
        return probs


@dataclass
class GateChange:
    kind: str  # "start", "early", "pause", "resume", "end" or "lasting"
    at_ms: int  # stream time where speech started, stopped or came back


class SpeechGate:
    """Hysteresis over window probabilities -> clean speech decisions.

    ``start`` after ``min_speech_ms`` above the start threshold; ``early`` after ``early_ms``
    below the end threshold (0: never), ahead of ``pause`` after ``pause_ms`` (the caller may only
    be catching breath); both carry where that silence began, so a pause whose silence is the early
    one's has the same ``at_ms``; ``resume`` when speech of ``min_speech_ms`` comes back during a
    pause; ``end`` after ``end_silence_ms`` of silence. Short blips during a pause neither resume
    speech nor restart the silence count. ``lasting`` (``lasting_ms`` > 0) once a stretch of speech
    (from its start or resume, with no pause in it) has gone on for ``lasting_ms``, counted on the
    audio's own clock and said on a voiced window; it carries where the stretch began.
    """

    def __init__(
        self,
        start_threshold: float,
        end_threshold: float,
        min_speech_ms: int,
        pause_ms: int,
        end_silence_ms: int,
        early_ms: int = 0,
        lasting_ms: int = 0,
    ) -> None:
        self.start_threshold = start_threshold
        self.end_threshold = end_threshold
        self.min_speech_windows = max(1, min_speech_ms // WINDOW_MS)
        self.pause_windows = max(1, pause_ms // WINDOW_MS)
        self.early_windows = early_ms // WINDOW_MS if 0 < early_ms < pause_ms else 0
        self._early_said = False  # the current silence has had its early change
        self.end_silence_windows = max(self.pause_windows, end_silence_ms // WINDOW_MS)
        self.lasting_windows = -(-lasting_ms // WINDOW_MS) if lasting_ms > 0 else 0  # at least that long
        self._stretch_start = 0  # window where the current stretch of speech began
        self._lasting_said = True  # the current stretch has had its lasting change (none yet)
        self.speaking = False  # between start and end, pauses included
        self.paused = False
        self._window = 0
        self._silence = 0  # windows of silence since speech last stopped
        self._silence_start = 0
        self._voiced = 0  # consecutive windows above the start threshold
        self._voiced_start = 0

    def push(self, prob: float) -> GateChange | None:
        """One window's probability; returns a change of state, if any."""
        index, self._window = self._window, self._window + 1
        if prob >= self.start_threshold:
            if self._voiced == 0:
                self._voiced_start = index
            self._voiced += 1
        else:
            self._voiced = 0
        if not self.speaking:
            if self._voiced >= self.min_speech_windows:
                self.speaking, self._silence, self._voiced = True, 0, 0
                return self._stretch("start")
            return None
        if self.paused:
            if self._voiced >= self.min_speech_windows:
                self.paused, self._silence, self._voiced = False, 0, 0
                return self._stretch("resume")
            self._silence += 1
        elif prob < self.end_threshold:
            if self._silence == 0:
                self._silence_start, self._early_said = index, False
            self._silence += 1
        else:
            self._silence = 0
        if self._silence >= self.end_silence_windows:
            self.speaking = self.paused = False
            self._silence = self._voiced = 0
            return GateChange("end", self._silence_start * WINDOW_MS)
        if not self.paused and self._silence >= self.pause_windows:
            self.paused = True
            return GateChange("pause", self._silence_start * WINDOW_MS)
        if (
            not self.paused
            and self.early_windows
            and not self._early_said
            and self._silence >= self.early_windows
        ):
            self._early_said = True
            return GateChange("early", self._silence_start * WINDOW_MS)
        if (
            not self.paused
            and not self._lasting_said
            and self._silence == 0  # on a voiced window: a silence now may yet become a pause
            and index + 1 - self._stretch_start >= self.lasting_windows
        ):
            self._lasting_said = True
            return GateChange("lasting", self._stretch_start * WINDOW_MS)
        return None

    def recount(self) -> None:
        """The current stretch's length counts from now (``lasting`` is said that much later)."""
        if self.speaking and not self.paused:
            self._stretch_start, self._lasting_said = self._window, self.lasting_windows == 0

    def _stretch(self, kind: str) -> GateChange:
        """Speech starts or resumes: a new stretch, whose length ``lasting`` counts."""
        self._stretch_start, self._lasting_said = self._voiced_start, self.lasting_windows == 0
        return GateChange(kind, self._voiced_start * WINDOW_MS)
