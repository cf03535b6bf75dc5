"""The Debian synthesisers a voice can name (voxbus.engines.tts.voice_command): the command each
takes, and a voice of neither kind refused with a clear error."""

from __future__ import annotations

import pytest

from voxbus.engines.tts import voice_command


def test_espeak_reads_its_text_from_stdin_at_a_rate_from_the_length_scale() -> None:
    argv, stdin = voice_command("espeak-ng:en-us+f2", "Friday at nine.", length_scale=1.25)
    assert argv == ["espeak-ng", "-v", "en-us+f2", "-s", "140", "--stdout"] and stdin == b"Friday at nine."


def test_flite_takes_its_text_as_an_argument_and_writes_the_wav_to_stdout() -> None:
    argv, stdin = voice_command("flite:slt", "-5 degrees", length_scale=1.0)
    assert argv[:3] == ["flite", "-voice", "slt"] and stdin is None
    assert argv[argv.index("-t") + 1] == "-5 degrees" and argv[-2:] == ["-o", "/dev/stdout"]
    assert "duration_stretch=1.0" in argv


@pytest.mark.parametrize("voice", ["festival:kal", "slt", "/voices/none.onnx"])
def test_any_other_voice_is_refused_by_name(voice: str) -> None:
    with pytest.raises(ValueError, match="espeak-ng:VOICE, flite:VOICE"):
        voice_command(voice, "hello")
