"""Text-to-speech: piper (ONNX), its 22.05 kHz output resampled to 16 kHz with soxr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soxr

from voxbus.config import TtsSettings
from voxbus.media.frames import SAMPLE_RATE, Framer


def _quiet_session(model: Path) -> object:
    """onnxruntime's threads spin between runs by default, taking the CPU the LLM is decoding the
    rest of the answer on; these ones sleep."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


class PiperEngine:
    def __init__(self, voice_path: Path, settings: TtsSettings) -> None:
        from piper import PiperVoice
        from piper.config import SynthesisConfig

        config = Path(str(voice_path) + ".json")
        if not config.is_file():
            raise FileNotFoundError(f"piper voice config {config} is missing (it sits beside the .onnx)")
        self.voice = PiperVoice.load(str(voice_path), config_path=str(config))
        self.voice.session = _quiet_session(voice_path)
        self.rate = self.voice.config.sample_rate
        self._syn = SynthesisConfig(length_scale=settings.length_scale)

    def frames(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """20 ms PCM16 16 kHz frames of ``text``; the last is padded with silence. Blocking."""
        resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="int16", quality="HQ")
        framer = Framer()
        for chunk in self.voice.synthesize(text, syn_config=self._syn):
            if cancelled():
                return
            pcm = resampler.resample_chunk(chunk.audio_int16_array)
            yield from framer.push(np.asarray(pcm, dtype=np.int16).tobytes())
        yield from framer.push(
            np.asarray(resampler.resample_chunk(np.zeros(0, np.int16), last=True)).tobytes()
        )
        tail = framer.flush()
        if tail:
            yield tail
