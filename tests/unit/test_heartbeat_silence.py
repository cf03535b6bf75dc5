"""A worker's silence as its supervisor heard it: the supervisor's own stalls do not count."""

from __future__ import annotations

from voxbus.supervisors.heartbeat import Silence

INTERVAL, TIMEOUT = 0.5, 3.0


def checked_every_interval(silence: Silence, start: float, until: float) -> float:
    """The silence at each check from ``start`` to ``until``; returns the last one."""
    now, heard = start, 0.0
    while now < until:
        now += INTERVAL
        heard = silence.heard_for(now)
    return heard


def test_a_worker_silent_past_the_timeout_is_heard_silent() -> None:
    silence = Silence(INTERVAL, last_beat=0.0, last_check=0.0)
    assert checked_every_interval(silence, 0.0, 2.5) < TIMEOUT
    assert checked_every_interval(silence, 2.5, 3.5) > TIMEOUT


def test_a_stalled_supervisor_does_not_take_its_own_stall_for_the_workers_silence() -> None:
    silence = Silence(INTERVAL, last_beat=0.0, last_check=0.0)
    checked_every_interval(silence, 0.0, 1.0)
    # the supervisor's loop stood still 6 s: the beats sent meanwhile are still unread
    assert silence.heard_for(7.0) < TIMEOUT
    silence.beat(7.01)  # read as soon as the loop runs again
    assert silence.heard_for(7.5) < INTERVAL


def test_a_worker_that_hangs_during_a_stall_is_heard_silent_soon_after_it() -> None:
    silence = Silence(INTERVAL, last_beat=0.0, last_check=0.0)
    assert silence.heard_for(6.0) < TIMEOUT  # stalled from the start: nothing could be heard
    assert checked_every_interval(silence, 6.0, 9.5) > TIMEOUT  # no beat came after it either


def test_a_check_a_little_late_counts_in_full() -> None:
    silence = Silence(INTERVAL, last_beat=0.0, last_check=0.0)
    assert silence.heard_for(0.9) == 0.9  # 0.4 s late: a busy loop, not a stall
