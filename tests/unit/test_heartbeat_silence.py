"""A worker's silence as its supervisor heard it: the supervisor's own stalls do not count."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from voxbus.supervisors.heartbeat import Silence, held_back, hung

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


def test_a_silent_worker_that_uses_no_cpu_is_hung_one_that_works_is_given_longer() -> None:
    from voxbus.supervisors.heartbeat import hung

    assert not hung(2.0, 0.0, TIMEOUT, 30.0)  # not silent long enough
    assert hung(3.5, 0.0, TIMEOUT, 30.0)  # stopped or deadlocked
    assert hung(3.5, None, TIMEOUT, 30.0)  # CPU not known: silence alone decides
    assert not hung(3.5, 0.2, TIMEOUT, 30.0)  # starved event loop, threads at work
    assert hung(31.0, 0.2, TIMEOUT, 30.0)  # busy for too long: stuck in a loop


def test_cpu_used_is_over_the_last_second_of_checks() -> None:
    silence = Silence(INTERVAL, last_beat=0.0, last_check=0.0)
    assert silence.cpu_used(1.0) is None  # one sample: nothing to compare yet
    assert silence.cpu_used(1.5) == 0.5
    assert silence.cpu_used(1.5) == 0.5  # still within the window
    assert silence.cpu_used(1.5) == 0.0  # stopped for a whole second
    assert silence.cpu_used(None) is None  # the process is gone


def test_cpu_seconds_of_a_real_process() -> None:
    import os

    from voxbus.supervisors.heartbeat import cpu_seconds

    before = cpu_seconds(os.getpid())
    assert before is not None
    sum(i * i for i in range(2_000_000))  # a few tens of milliseconds of work
    after = cpu_seconds(os.getpid())
    assert after is not None and after > before
    assert cpu_seconds(2**22 + 12345) is None  # no such process


def test_a_worker_the_machine_holds_back_is_busy_not_hung() -> None:
    assert not hung(3.5, 0.0, TIMEOUT, 30.0, held=True)  # runnable without a core, or on the disk
    assert hung(31.0, 0.0, TIMEOUT, 30.0, held=True)
    silence = Silence(INTERVAL, last_beat=0.0)
    assert silence.held_back(True)
    assert silence.held_back(False) and silence.held_back(None)  # held within the last second
    assert not silence.held_back(False)


def test_held_back_reads_every_thread_of_a_process() -> None:
    # this thread is running while it reads its own state: 'R'
    assert held_back(os.getpid())
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        # asleep ('S') once started; stopped ('T') after SIGSTOP: neither is held back
        reaches(sleeper.pid, "S")
        assert held_back(sleeper.pid) is False
        sleeper.send_signal(signal.SIGSTOP)  # the signal wakes it ('R') on its way to 'T'
        reaches(sleeper.pid, "T")
        assert held_back(sleeper.pid) is False
    finally:
        sleeper.kill()
        sleeper.wait()
    assert held_back(sleeper.pid) is None  # gone


def reaches(pid: int, state: str, within_s: float = 30.0) -> None:
    """Wait until the process's state letter is ``state`` (a hang guard, not a timing)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2] == state:
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never reached state {state!r}")


def test_a_killed_workers_line_says_what_its_threads_were_doing() -> None:
    from voxbus.supervisors.heartbeat import describe

    assert describe("SSST", 0.0) == "threads 3 S, 1 T; 0.00 s CPU in the last second"
    assert describe(None, None) == "threads not known; CPU not known"
