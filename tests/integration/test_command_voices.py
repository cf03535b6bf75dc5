"""Debian's synthesisers as voices (benchmark callers, languages without a piper voice): each
speaks 16 kHz frames through the same engine interface as piper, slower with a longer length
scale; a synthesiser that is not installed is named in the error."""

from __future__ import annotations

import numpy as np
import pytest

from voxbus.config import TtsSettings
from voxbus.engines.tts import voice_engine
from voxbus.media.frames import FRAME_BYTES


@pytest.mark.parametrize("voice", ["espeak-ng:en-us+f2", "flite:slt", "flite:rms"])
def test_a_command_voice_speaks_frames_of_speech(voice: str) -> None:
    normal = list(voice_engine(voice, TtsSettings()).frames("Please move my appointment to Friday."))
    slow = list(
        voice_engine(voice, TtsSettings(length_scale=1.5)).frames("Please move my appointment to Friday.")
    )
    assert normal and all(len(f) == FRAME_BYTES for f in normal)
    samples = np.frombuffer(b"".join(normal), np.int16).astype(np.float32)
    assert np.sqrt(np.mean(samples**2)) > 300  # speech, not silence
    assert 1.5 < len(normal) * 0.02 < 4.0  # a sentence's length at 16 kHz
    assert len(slow) > 1.2 * len(normal)


def test_a_missing_synthesiser_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install flite"):
        voice_engine("flite:awb", TtsSettings())
