"""The turn-taking benchmark's plan and scoring (bench/turn_taking.py), on made-up recordings: what
it reports must follow from what the caller heard and what the call actor decided."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import turn_taking as bench  # noqa: E402

from voxbus.media.dialogue import LineTiming  # noqa: E402
from voxbus.schemas.events import BargeIn, PlayoutDone, PlayoutHeld, PlayoutResumed, PlayoutStarted  # noqa: E402

T0 = 1_700_000_000.0  # the caller's tick 0, in epoch seconds
PLAYING = PlayoutStarted(call_id="c", gen=3, at_ms=0, ts=T0 + 0.05)  # the agent's answer from tick 0


def test_between_two_clauses_the_agent_is_still_speaking() -> None:
    # its answer started at 0.05 s and is not done: an onset in a silence between clauses counts
    assert bench.playing_at([PLAYING], T0, 2.0)
    assert not bench.playing_at([PLAYING, PlayoutDone(call_id="c", gen=3, played_ms=1, ts=T0 + 1.0)], T0, 2.0)
    assert not bench.playing_at([PLAYING], T0, 0.0)


def ticks(*spans: tuple[int, int]) -> np.ndarray:
    """Loud ticks of the agent's audio heard: [start, end) spans."""
    return np.concatenate([np.arange(a, b) for a, b in spans])


def test_the_plan_is_reproducible_and_covers_every_kind_of_situation() -> None:
    items = bench.plan(20, 30, seed=7)
    assert items == bench.plan(20, 30, seed=7) and items != bench.plan(20, 30, seed=8)
    kinds = Counter(item["class"] for item in items)
    assert kinds["short, loud"] + kinds["short, soft"] + kinds["long, loud"] + kinds["long, soft"] == 20
    assert min(kinds[c] for c in ("short, loud", "short, soft", "long, loud", "long, soft")) >= 4
    assert kinds["backchannel"] == 15 and sum(kinds[n] for n in bench.NOISES) == 15
    assert len({item["question"] for item in items}) == 50  # a different answer each time
    dialogue = bench.dialogue_of(items)
    assert len(dialogue.lines) == 2 * 50 + 1
    assert all(line.when == "during_reply" for line in dialogue.lines[1:-1:2])


def test_line_noises_are_short_loud_and_not_silence() -> None:
    for seed, kind in enumerate(bench.NOISES):
        pcm = np.frombuffer(bench.line_noise(kind, seed), dtype=np.int16)
        assert 0 < len(pcm) <= 16000 and np.abs(pcm).max() > 1000, kind


def test_an_interruption_is_scored_by_the_last_agent_audio_heard_after_its_onset() -> None:
    # the agent speaks from tick 0, the caller cuts in at tick 100, the agent's audio stops at tick
    # 110 (a 40 ms clause gap at 104 does not end it); its next answer starts at tick 200
    loud = ticks((0, 104), (106, 110), (200, 260))
    timing = LineTiming(text="Stop.", role="interrupt", start_tick=100, end_tick=125)
    barge = BargeIn(call_id="c", decision="interrupt", reason="words", onset_ts=T0 + 2.0)
    item = {"kind": "interruption", "class": "short, loud", "text": "Stop."}
    row = bench.score(timing, item, loud, [PLAYING, barge], T0)
    assert row["agent_speaking"] and row["stopped"] and row["stop_ms"] == 200


def test_a_backchannel_is_scored_by_its_hold_and_a_false_interruption_is_caught() -> None:
    loud = ticks((0, 150), (163, 400))  # a 260 ms silence heard around the backchannel
    timing = LineTiming(text="Uh-huh.", role="backchannel", start_tick=140, end_tick=160)
    held = PlayoutHeld(call_id="c", gen=3, played_ms=2800, ts=T0 + 2.95)
    resumed = PlayoutResumed(call_id="c", gen=3, ts=T0 + 3.2)
    ignored = BargeIn(call_id="c", decision="ignored", reason="backchannel", onset_ts=T0 + 2.8)
    item = {"kind": "other", "class": "backchannel", "text": "Uh-huh."}
    row = bench.score(timing, item, loud, [PLAYING, held, resumed, ignored], T0)
    assert not row["false_interruption"] and row["held_ms"] == 250.0 and row["longest_quiet_ms"] == 260
    interrupt = BargeIn(call_id="c", decision="interrupt", reason="words", onset_ts=T0 + 2.8)
    assert bench.score(timing, item, loud, [PLAYING, held, interrupt], T0)["false_interruption"]


def test_a_situation_after_the_answer_ended_is_left_out_of_the_figures() -> None:
    loud = ticks((0, 50))
    timing = LineTiming(text="Mm-hmm.", role="backchannel", start_tick=120, end_tick=140)
    done = PlayoutDone(call_id="c", gen=3, played_ms=1000, ts=T0 + 1.1)
    item = {"kind": "other", "class": "backchannel", "text": "Mm-hmm."}
    row = bench.score(timing, item, loud, [PLAYING, done], T0)
    assert not row["agent_speaking"]
    summary = bench.summarise([{**row, "voice": "v", "gap_s": 1.0}])
    assert summary["others"] == 0 and summary["left_out_agent_silent"] == 1


def test_an_agent_already_quiet_at_the_onset_has_stopped_at_once() -> None:
    # a pause between two clauses at the onset; held there, the agent's next words come only with
    # the answer after the interruption (tick 200): the stop is not measured to that answer's end
    loud = ticks((0, 98), (200, 260))
    timing = LineTiming(text="Wait.", role="interrupt", start_tick=100, end_tick=118)
    held = PlayoutHeld(call_id="c", gen=3, played_ms=1900, ts=T0 + 2.1)
    barge = BargeIn(call_id="c", decision="interrupt", reason="words", onset_ts=T0 + 2.0)
    item = {"kind": "interruption", "class": "short, soft", "text": "Wait."}
    row = bench.score(timing, item, loud, [PLAYING, held, barge], T0)
    assert row["agent_speaking"] and row["stop_ms"] == 0


def test_an_answer_ending_by_itself_as_the_caller_begins_was_not_spoken_over() -> None:
    loud = ticks((0, 103), (300, 360))
    timing = LineTiming(text="Wait, wait.", role="interrupt", start_tick=100, end_tick=130)
    done = PlayoutDone(call_id="c", gen=3, played_ms=2050, ts=T0 + 2.1, complete=True)
    item = {"kind": "interruption", "class": "long, loud", "text": "Wait, wait."}
    row = bench.score(timing, item, loud, [PLAYING, done], T0)
    assert not row["agent_speaking"] and row["stop_ms"] == 60


def test_the_backchannel_hold_leaves_out_noises_that_were_never_held() -> None:
    def other(cls: str, held: float) -> dict[str, object]:
        return {"kind": "other", "class": cls, "agent_speaking": True, "held_ms": held,
                "longest_quiet_ms": 0, "false_interruption": False}  # fmt: skip

    summary = bench.summarise([other("backchannel", 500.0), other("backchannel", 300.0), other("click", 0.0)])
    assert summary["held_p50_ms"] == 300.0 and summary["backchannel_held_p50_ms"] == 400.0
