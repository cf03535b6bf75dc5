"""Text-to-speech: piper (ONNX), or espeak-ng for languages without a piper voice; 16 kHz frames
(resampled with soxr)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
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


class EspeakEngine:
    """Debian's espeak-ng: a formant voice for languages that no shipped piper voice speaks.
    Robotic but clear, and it costs next to nothing (a sentence in about 20 ms)."""

    RATE = 22050

    def __init__(self, voice: str, settings: TtsSettings) -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise FileNotFoundError(f"espeak-ng (voice {voice}) is not installed: apt-get install espeak-ng")
        self.voice = voice
        # piper's length_scale is a duration factor; espeak-ng takes words per minute (175 normal)
        self.words_per_minute = round(175 / (settings.length_scale or 1.0))
        self.rate = self.RATE

    def frames(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """20 ms PCM16 16 kHz frames of ``text``; the last is padded with silence. Blocking."""
        command = [self.binary or "espeak-ng", "-v", self.voice, "-s", str(self.words_per_minute), "--stdout"]
        wav = subprocess.run(command, input=text.encode(), capture_output=True, check=True).stdout
        if cancelled():
            return
        with wave.open(io.BytesIO(wav)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            rate = w.getframerate()
        framer = Framer()
        resampled = soxr.resample(pcm, rate, SAMPLE_RATE, quality="HQ") if rate != SAMPLE_RATE else pcm
        yield from framer.push(np.asarray(resampled, dtype=np.int16).tobytes())
        tail = framer.flush()
        if tail:
            yield tail


VoiceEngine = PiperEngine | EspeakEngine


def voice_engine(voice: str, settings: TtsSettings) -> VoiceEngine:
    """A voice from its description in ``tts.voices``: ``espeak-ng:VOICE`` or a piper .onnx path."""
    if voice.startswith("espeak-ng:"):
        return EspeakEngine(voice.removeprefix("espeak-ng:"), settings)
    path = Path(voice).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"piper voice {path} (from tts.voices) does not exist")
    return PiperEngine(path, settings)
