"""The latency benchmark's bookkeeping (bench/latency.py, bench/peer.py), on made-up events and
audio: which lines the peer hears, and which turn's stage times belong to a caller's line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import latency  # noqa: E402
import peer  # noqa: E402

from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer  # noqa: E402
from voxbus.media.frames import FRAME_BYTES, SAMPLE_RATE  # noqa: E402
from voxbus.schemas.events import SttFinal, TurnMetrics  # noqa: E402

T0 = 1_700_000_000.0


def frames_of(n: int, level: int = 1000) -> list[bytes]:
    return [np.full(FRAME_BYTES // 2, level, np.int16).tobytes() for _ in range(n)]


def test_the_peer_hears_each_answered_line_and_a_hesitation_joined_to_its_end() -> None:
    dialogue = Dialogue(
        lines=[
            DialogueLine(text="What is the capital of France?"),
            DialogueLine(text="Yeah, okay.", when="during_reply", role="backchannel"),
            DialogueLine(text="noise:cough", when="after_line", role="noise"),
            DialogueLine(text="I'd like to book a table, um", role="hesitation"),
            DialogueLine(text="for four people.", when="after_line", gap_s=0.5),
            DialogueLine(text="Sorry, stop. And Italy?", when="during_reply", role="interrupt"),
        ]
    )
    player = DialoguePlayer(dialogue, [frames_of(n) for n in (10, 3, 2, 20, 15, 12)])
    turns = peer.answered_audio(dialogue, player)
    assert [text for text, _ in turns] == [
        "What is the capital of France?",
        "I'd like to book a table, um for four people.",
        "Sorry, stop. And Italy?",
    ]
    silence = 2 * int(0.5 * SAMPLE_RATE)
    assert [len(pcm) for _, pcm in turns] == [10 * FRAME_BYTES, 35 * FRAME_BYTES + silence, 12 * FRAME_BYTES]


def test_a_pcmu_line_keeps_the_length_and_roughly_the_level_of_the_audio() -> None:
    tone = (3000 * np.sin(np.arange(SAMPLE_RATE) * 2 * np.pi * 440 / SAMPLE_RATE)).astype(np.int16)
    line = peer.over_pcmu(tone.tobytes())
    assert abs(len(line) - len(tone)) <= 2
    assert 0.8 < np.sqrt(np.mean(line.astype(float) ** 2)) / np.sqrt(np.mean(tone.astype(float) ** 2)) < 1.2


def metrics(text: str, ts: float) -> TurnMetrics:
    return TurnMetrics(call_id="c", gen=1, turn=1, user_text=text, agent_text="", ts=ts)


def test_a_lines_stage_times_are_those_of_the_turn_its_first_transcript_ends() -> None:
    # whisper ended "Great, thanks a lot." at an inner pause before the line's end; the turn grew
    events = [
        SttFinal(call_id="c", text="Great.", start_ms=0, end_ms=500, compute_s=0.1, ts=T0 + 1.0),
        SttFinal(call_id="c", text="Thanks a lot.", start_ms=600, end_ms=1500, compute_s=0.1, ts=T0 + 2.1),
        metrics("Great. Thanks a lot.", T0 + 3.0),
    ]
    found = latency.metrics_of_line(events, T0 + 2.0, T0 + 10.0)
    assert found is not None and found.user_text == "Great. Thanks a lot."


def test_an_earlier_turn_with_the_same_words_is_not_taken_for_the_lines() -> None:
    events = [
        metrics("Yes.", T0 + 1.0),
        SttFinal(call_id="c", text="Yes.", start_ms=0, end_ms=500, compute_s=0.1, ts=T0 + 5.0),
        metrics("Yes.", T0 + 6.0),
    ]
    found = latency.metrics_of_line(events, T0 + 4.0, T0 + 10.0)
    assert found is not None and found.ts == T0 + 6.0
