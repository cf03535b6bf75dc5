"""The scripted caller of the SIP tests and benchmarks: a line waits for its trigger."""

from __future__ import annotations

from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer
from voxbus.media.frames import FRAME_BYTES, SILENCE

LOUD = b"\x10\x10" * (FRAME_BYTES // 2)


def player(second: DialogueLine) -> DialoguePlayer:
    dialogue = Dialogue(lines=[DialogueLine(text="first", when="after_line", gap_s=0), second])
    return DialoguePlayer(dialogue, [[LOUD] * 3, [LOUD] * 2])


def play(caller: DialoguePlayer, ticks: range) -> list[bool]:
    return [caller.frame(tick) != SILENCE for tick in ticks]


def test_a_line_after_its_cue_waits_for_it_however_long_the_system_takes() -> None:
    caller = player(DialogueLine(text="second", when="after_cue", gap_s=0.04))  # two ticks
    assert play(caller, range(0, 3)) == [True] * 3  # the first line
    assert play(caller, range(3, 50)) == [False] * 47  # no cue yet: silence, for as long as it takes
    caller.cue()
    assert play(caller, range(50, 55)) == [False, False, True, True, False]
    assert [t.start_tick for t in caller.timings] == [0, 52]


def test_a_cue_before_the_previous_line_began_does_not_count() -> None:
    caller = player(DialogueLine(text="second", when="after_cue", gap_s=0))
    caller.cue()  # something the caller did not wait for yet (before its first line)
    play(caller, range(0, 3))
    assert play(caller, range(3, 10)) == [False] * 7


def test_a_cue_that_never_comes_lets_the_line_go_after_the_dialogues_reply_timeout() -> None:
    for timeout_s, first_tick in ((0.2, 14), (1.0, 54)):  # 10 and 50 ticks after the first line's end
        dialogue = Dialogue(
            lines=[
                DialogueLine(text="first", when="after_line", gap_s=0),
                DialogueLine(text="second", when="after_cue", gap_s=0),
            ],
            reply_timeout_s=timeout_s,
        )
        caller = DialoguePlayer(dialogue, [[LOUD] * 3, [LOUD] * 2])
        play(caller, range(0, 80))
        assert [t.start_tick for t in caller.timings] == [0, first_tick]
