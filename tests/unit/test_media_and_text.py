"""Clause cutting, the VAD's hysteresis, the playout queue and the model catalogue's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxbus.actors.clauses import ClauseSplitter, speakable
from voxbus.config import Settings
from voxbus.engines.models import ModelMissing, model_path
from voxbus.media.frames import FRAME_BYTES, Framer, frames_of
from voxbus.media.playout import PlayoutQueue
from voxbus.media.vad import SileroStream, SpeechGate
from voxbus.schemas.events import Event, PlayoutDone, PlayoutStarted
from voxbus.schemas.messages import AudioFrame


def test_first_clause_is_cut_as_its_punctuation_arrives_but_not_after_numbers_or_titles() -> None:
    for tokens, first in [
        (["The capital", " is Paris", "."], "The capital is Paris."),
        (["The answer is", " 3", "."], None),
        (["Please ask", " Dr", "."], None),
        (["For example", " e.g", "."], None),
    ]:
        splitter = ClauseSplitter(min_chars=8)
        out = [clause for token in tokens for clause in splitter.push(token)]
        assert out == ([first] if first else []), tokens


def test_first_clause_is_cut_early_and_later_ones_at_sentence_ends() -> None:
    splitter = ClauseSplitter(min_chars=8)
    out = []
    for token in [
        "Sure",
        ", the",
        " capital",
        " is",
        " Paris",
        ", which",
        " is",
        " lovely",
        ".",
        " It",
        " has",
        " 2.1",
        " million",
        " people",
        ".",
    ]:
        out += splitter.push(token)
    assert out == ["Sure,", "the capital is Paris,", "which is lovely."]
    assert splitter.flush() == "It has 2.1 million people."


def test_a_short_opener_is_its_own_first_clause_as_soon_as_its_punctuation_arrives() -> None:
    for text, opener in [
        ("Sure,", True),
        ("Of course,", True),
        ("You're welcome!", True),
        ("Got it.", True),
        ("Dr.", False),
        ("At 3,", False),
        ("Hi there Peter,", False),
        ("Well:", False),
        ("A,", False),
    ]:
        splitter = ClauseSplitter(min_chars=20)
        assert splitter.push(text) == ([text] if opener else []), text
    splitter = ClauseSplitter(min_chars=12)
    tokens = ["Of", " course", ",", " I", " can", " help", " you", ",", " what", " day", "?"]
    out = [clause for token in tokens for clause in splitter.push(token)]
    assert out == ["Of course,", "I can help you,"]  # the clause after an opener is cut eagerly too
    assert splitter.flush() == "what day?"


def test_only_the_first_clause_may_be_a_short_opener() -> None:
    splitter = ClauseSplitter(min_chars=12)
    tokens = ["The capital is Paris", ".", " Yes", ",", " really", "."]
    out = [clause for token in tokens for clause in splitter.push(token)]
    assert out == ["The capital is Paris."]
    assert splitter.flush() == "Yes, really."


def test_speakable_drops_markdown() -> None:
    assert speakable("**Paris** is `the` capital\n# yes") == "Paris is the capital yes"


def test_framer_carries_remainders() -> None:
    framer = Framer()
    assert list(framer.push(bytes(FRAME_BYTES + 10))) == [bytes(FRAME_BYTES)]
    assert len(list(framer.push(bytes(FRAME_BYTES - 10)))) == 1
    assert framer.flush() is None
    assert len(frames_of(bytes(FRAME_BYTES * 2 + 1))) == 3


def test_gate_needs_min_speech_and_end_silence() -> None:
    gate = SpeechGate(0.5, 0.35, min_speech_ms=96, pause_ms=64, end_silence_ms=160)
    probs = [0.1, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    changes = [(i, c.kind, c.at_ms) for i, p in enumerate(probs) if (c := gate.push(p))]
    # a one-window blip does not start speech; a one-window dip does not pause it
    assert changes == [(5, "start", 3 * 32), (10, "pause", 9 * 32), (13, "end", 9 * 32)]


def test_gate_resumes_after_a_pause_but_not_for_a_blip() -> None:
    gate = SpeechGate(0.5, 0.35, min_speech_ms=96, pause_ms=64, end_silence_ms=320)
    probs = [0.9] * 3 + [0.1] * 2 + [0.9] + [0.1] * 2 + [0.9] * 3 + [0.1] * 10
    changes = [(i, c.kind, c.at_ms) for i, p in enumerate(probs) if (c := gate.push(p))]
    assert changes == [
        (2, "start", 0),
        (4, "pause", 3 * 32),
        (10, "resume", 8 * 32),  # the one-window blip at 5 did not resume
        (12, "pause", 11 * 32),
        (20, "end", 11 * 32),
    ]


def test_gate_says_early_silence_ahead_of_the_pause_once_per_silence() -> None:
    gate = SpeechGate(0.5, 0.35, min_speech_ms=96, pause_ms=192, end_silence_ms=640, early_ms=96)
    # speech, a silence of 4 windows (early, not a pause), speech again, then a silence that is one
    probs = [0.9] * 3 + [0.1] * 4 + [0.9] * 2 + [0.1] * 7
    changes = [(i, c.kind, c.at_ms) for i, p in enumerate(probs) if (c := gate.push(p))]
    assert changes == [
        (2, "start", 0),
        (5, "early", 3 * 32),  # its silence went no further: the next pause is of another silence
        (11, "early", 9 * 32),
        (14, "pause", 9 * 32),  # the same silence as the early change before it: the same at_ms
    ]
    # early_ms not shorter than pause_ms: off
    late = SpeechGate(0.5, 0.35, min_speech_ms=96, pause_ms=96, end_silence_ms=640, early_ms=96)
    assert [c.kind for p in probs if (c := late.push(p))] == ["start", "pause"]


def test_gate_says_a_stretch_of_speech_lasted_once_on_a_voiced_window_and_anew_after_a_pause() -> None:
    gate = SpeechGate(0.5, 0.35, min_speech_ms=96, pause_ms=128, end_silence_ms=640, lasting_ms=320)
    # 10 windows of speech with a 2-window dip (no pause) reaching the 10th window in silence, then
    # a pause, then speech resumed long enough; a third stretch too short
    probs = [0.9] * 8 + [0.1] * 2 + [0.9] * 3 + [0.1] * 4 + [0.9] * 11 + [0.1] * 4 + [0.9] * 5 + [0.1] * 4
    changes = [(i, c.kind, c.at_ms) for i, p in enumerate(probs) if (c := gate.push(p))]
    assert changes == [
        (2, "start", 0),
        (10, "lasting", 0),  # 320 ms reached at window 9, in a dip: said on the next voiced window
        (16, "pause", 13 * 32),
        (19, "resume", 17 * 32),
        (26, "lasting", 17 * 32),  # once per stretch: not again at window 27
        (31, "pause", 28 * 32),
        (34, "resume", 32 * 32),
        (40, "pause", 37 * 32),  # 160 ms of speech: never lasting
    ]
    off = SpeechGate(0.5, 0.35, min_speech_ms=96, pause_ms=128, end_silence_ms=640)
    assert "lasting" not in [c.kind for p in probs if (c := off.push(p))]


def test_silero_hears_a_tone_less_than_silence() -> None:
    vad = SileroStream()
    silence = vad.push(np.zeros(16000, np.float32))
    assert len(silence) == 31 and max(silence) < 0.3


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def frame(gen: int, seq: int, last: bool = False) -> AudioFrame:
    return AudioFrame(call_id="c", seq=seq, gen=gen, last=last, pcm=bytes([seq % 256]) * 640)


def test_playout_plays_in_order_reports_and_drops_flushed_generations() -> None:
    bus = Recorder()
    queue = PlayoutQueue(bus.emit, "c")
    for seq in (1, 0, 2):
        queue.push(frame(1, seq, last=seq == 2))
    played = [queue.next(k) for k in range(5)]
    assert [p[0] if p else None for p in played] == [0, 1, 2, None, None]
    started, done = bus.events
    assert isinstance(started, PlayoutStarted) and started.at_ms == 0
    assert isinstance(done, PlayoutDone) and done.played_ms == 60 and done.complete
    queue.push(frame(2, 0))
    queue.push(frame(2, 1))
    assert queue.next(10) is not None
    queue.flush(2)
    queue.push(frame(2, 2))  # late frame of a cancelled generation
    assert queue.next(11) is None and queue.idle and queue.dropped == 2
    assert isinstance(bus.events[-1], PlayoutDone) and not bus.events[-1].complete
    assert bus.events[-1].played_ms == 20


def test_model_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    settings = Settings(profile="test", model_dir=tmp_path)
    with pytest.raises(ModelMissing) as err:
        model_path(settings, "llm")
    assert str(tmp_path) in str(err.value) and "voxbus models fetch --profile test" in str(err.value)
    settings = Settings(profile="test", models={"tts": tmp_path / "mine.onnx"})
    with pytest.raises(ModelMissing) as err:
        model_path(settings, "tts")
    assert "mine.onnx" in str(err.value) and "models.tts" in str(err.value)


def test_dates_and_times_are_read_as_people_say_them() -> None:
    from voxbus.actors.spoken import spoken_dates

    assert spoken_dates("Moved to 2026-12-04 at 14:00.") == "Moved to Friday, December 4 at 2 PM."
    assert spoken_dates("Free: 09:00, 11:30 and 16:45") == "Free: 9 AM, 11:30 AM and 4:45 PM"
    assert spoken_dates("at 10:30 am, or 2026-13-45") == "at 10:30 am, or 2026-13-45"  # left as they are
    assert spoken_dates("the score was 3:1") == "the score was 3:1"  # not a time
    # in French, as a French receptionist says them
    assert (
        spoken_dates("Déplacé au 2026-12-04 à 14:30.", "fr")
        == "Déplacé au vendredi 4 décembre à 14 heures 30."
    )
    assert spoken_dates("Libre le 2027-01-01 à 09:00 ou 12:00", "fr") == (
        "Libre le vendredi 1er janvier à 9 heures ou midi"
    )
    assert spoken_dates("2026-12-04 14:00", "de") == "2026-12-04 14:00"  # the voice reads them


def test_openers_can_be_turned_off() -> None:
    splitter = ClauseSplitter(min_chars=12, openers=False)
    assert splitter.push("Sure, ") == []
    assert splitter.push("the capital is Paris. ") == ["Sure, the capital is Paris."]
