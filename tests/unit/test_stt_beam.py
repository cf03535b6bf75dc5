"""Whisper's beam per turn (voxbus.engines.stt.beam_for): short replies are searched wider."""

from __future__ import annotations

from voxbus.config import SttSettings
from voxbus.engines.stt import beam_for


def test_a_short_reply_is_searched_with_the_wider_beam_and_a_sentence_greedily() -> None:
    settings = SttSettings()
    assert beam_for(1.6, settings) == 5  # "Friday at 9."
    assert beam_for(settings.short_reply_s, settings) == 5
    assert beam_for(4.0, settings) == 1  # a sentence: greedy, as before


def test_the_wider_beam_never_narrows_the_one_set_for_every_turn() -> None:
    assert beam_for(1.0, SttSettings(beam_size=8)) == 8
    assert beam_for(1.0, SttSettings(short_reply_s=0)) == 1  # off
