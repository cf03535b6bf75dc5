"""Text-to-speech: piper (ONNX), or a Debian synthesiser (espeak-ng, flite) for languages and
benchmark callers without a piper voice; 16 kHz frames (resampled with soxr)."""

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


COMMAND_SYNTHESISERS = ("espeak-ng", "flite")  # Debian packages of the same names


def voice_command(voice: str, text: str, length_scale: float = 1.0) -> tuple[list[str], bytes | None]:
    """The command that writes ``voice``'s WAV of ``text`` to standard output, and its standard
    input. ``voice`` is ``espeak-ng:VOICE`` (a formant voice, every language) or ``flite:VOICE``
    (CMU's English voices built from recordings of real speakers: slt, rms, awb)."""
    synthesiser, _, name = voice.partition(":")
    if synthesiser == "espeak-ng":
        # piper's length_scale is a duration factor; espeak-ng takes words per minute (175 normal)
        words_per_minute = str(round(175 / (length_scale or 1.0)))
        return [synthesiser, "-v", name, "-s", words_per_minute, "--stdout"], text.encode()
    if synthesiser == "flite":  # flite takes its text as an argument and never reads stdin
        stretch = f"duration_stretch={length_scale or 1.0}"
        return [synthesiser, "-voice", name, "--setf", stretch, "-t", text, "-o", "/dev/stdout"], None
    raise ValueError(f"voice {voice!r}: expected espeak-ng:VOICE, flite:VOICE or a piper .onnx file")


def installed_synthesiser(voice: str) -> str:
    """The synthesiser ``voice`` names; FileNotFoundError, naming its package, if it is missing."""
    synthesiser = voice_command(voice, "")[0][0]
    if shutil.which(synthesiser) is None:
        raise FileNotFoundError(
            f"{synthesiser} (voice {voice}) is not installed: apt-get install {synthesiser}"
        )
    return synthesiser


def command_voice_pcm(voice: str, text: str, length_scale: float = 1.0) -> tuple[np.ndarray, int]:
    """``text`` spoken by a command-line voice: int16 samples and their rate. Blocking."""
    argv, stdin = voice_command(voice, text, length_scale)
    wav = subprocess.run(argv, input=stdin, capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


class CommandVoiceEngine:
    """A Debian synthesiser run per sentence (``espeak-ng:VOICE``, ``flite:VOICE``): espeak-ng for
    languages that no shipped piper voice speaks, robotic but clear; flite's voices as callers
    other than the agent in benchmarks. Either costs next to nothing (a sentence in 20-60 ms)."""

    def __init__(self, voice: str, settings: TtsSettings) -> None:
        installed_synthesiser(voice)  # checked once, not per sentence
        self.voice = voice
        self.length_scale = settings.length_scale

    def frames(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """20 ms PCM16 16 kHz frames of ``text``; the last is padded with silence. Blocking."""
        pcm, rate = command_voice_pcm(self.voice, text, self.length_scale)
        if cancelled():
            return
        framer = Framer()
        resampled = soxr.resample(pcm, rate, SAMPLE_RATE, quality="HQ") if rate != SAMPLE_RATE else pcm
        yield from framer.push(np.asarray(resampled, dtype=np.int16).tobytes())
        tail = framer.flush()
        if tail:
            yield tail


def EspeakEngine(voice: str, settings: TtsSettings) -> CommandVoiceEngine:  # noqa: N802 - a voice's old name
    """espeak-ng's ``voice`` (``fr``, ``en-us+f2``)."""
    return CommandVoiceEngine(f"espeak-ng:{voice}", settings)


VoiceEngine = PiperEngine | CommandVoiceEngine


def voice_engine(voice: str, settings: TtsSettings) -> VoiceEngine:
    """A voice from its description in ``tts.voices``: ``espeak-ng:VOICE``, ``flite:VOICE`` or a
    piper .onnx path."""
    if voice.partition(":")[0] in COMMAND_SYNTHESISERS:
        return CommandVoiceEngine(voice, settings)
    path = Path(voice).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"piper voice {path} (from tts.voices) does not exist")
    return PiperEngine(path, settings)
