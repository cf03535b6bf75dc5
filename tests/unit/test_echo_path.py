"""The echo gate's reference: the agent's level at the echo's measured delay, else the window's loudest."""

import numpy as np
import pytest

from voxbus.media.echo_path import HISTORY, NO_ECHO_DB, FarEndLevel

WINDOW = 30


def noise(rng: np.random.Generator, db: float) -> bytes:
    samples = rng.normal(0.0, 10 ** (db / 20), 320)
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def agent_levels(rng: np.random.Generator, frames: int) -> list[float]:
    """Speech-like levels: words of varying loudness, a pause every third of a second."""
    return [float(rng.uniform(-40, -10)) if (t // 15) % 3 else -90.0 for t in range(frames)]


def call(
    levels: list[float],
    delay: int,
    echo_db: float,
    rng: np.random.Generator,
    caller: list[float] | None = None,
) -> FarEndLevel:
    """Plays ``levels`` to a line that sends each frame back ``delay`` frames later at ``echo_db``
    (over a faint line noise), the caller's own levels on top where ``caller`` gives them."""
    far = FarEndLevel(WINDOW)
    for t, level in enumerate(levels):
        far.played(noise(rng, level))
        echo = levels[t - delay] + echo_db if t >= delay else -90.0
        said = caller[t] if caller is not None else -90.0
        far.heard(noise(rng, max(echo, said, -75.0)))
    return far


@pytest.mark.parametrize("delay", [0, 3, 12, WINDOW - 1])
def test_the_echos_delay_is_measured(delay: int) -> None:
    rng = np.random.default_rng(delay)
    far = call(agent_levels(rng, 400), delay, -20.0, rng)
    assert far.delay == delay


@pytest.mark.parametrize("loss", [-8.0, -20.0, -30.0])
def test_the_echos_loss_is_measured_and_gives_the_echo_expected(loss: float) -> None:
    rng = np.random.default_rng(int(-loss))
    far = call(agent_levels(rng, 400), 3, loss, rng)
    assert far.loss_db == pytest.approx(loss, abs=1.5)
    reference = far.db()
    assert reference is not None and far.echo_db() == pytest.approx(reference + far.loss_db, abs=0.11)


def test_no_echo_expected_before_it_is_measured() -> None:
    far = FarEndLevel(WINDOW)
    far.played(noise(np.random.default_rng(2), -20.0))
    assert far.db() is not None and far.echo_db() is None


def test_the_reference_is_the_agents_level_at_that_delay_not_the_windows_loudest() -> None:
    rng = np.random.default_rng(7)
    levels = agent_levels(rng, 400)
    levels[-4:] = [-45.0, -45.0, -45.0, -10.0]  # a quiet stretch echoing now, a loud frame just played
    levels[-20] = -5.0  # the loudest of the window, long echoed
    far = call(levels, 2, -20.0, rng)
    assert far.delay == 2
    assert far.db() == pytest.approx(-45.0, abs=1.0)  # frames 1-3 back: the quiet stretch


def test_a_line_with_no_echo_keeps_the_windows_loudest() -> None:
    rng = np.random.default_rng(3)
    levels = agent_levels(rng, 400)
    far = call(levels, 0, -90.0, rng)  # nothing comes back but the line's noise
    assert far.delay is None
    assert far.db() == pytest.approx(max(levels[-WINDOW:]), abs=1.0)


def test_the_caller_talking_over_the_agent_does_not_move_the_delay_elsewhere() -> None:
    """Unconfirmed, the delay gives way to the whole window; never to a wrong delay or loss."""
    rng = np.random.default_rng(5)
    levels = agent_levels(rng, 600)
    caller = [-90.0] * 300 + [float(rng.uniform(-25, -5)) for _ in range(300)]  # talks over the last 6 s
    far = call(levels, 4, -20.0, rng, caller)
    assert far.delay in (4, None)
    assert far.loss_db == pytest.approx(-20.0, abs=1.5)


def test_a_delay_that_changes_is_followed_and_never_trusted_stale() -> None:
    """The jitter buffers shrink the echo's delay from 19 frames to 7 (a loaded machine): the
    reference never stays on the old delay once the line no longer echoes there."""
    rng = np.random.default_rng(17)
    levels = agent_levels(rng, 900)
    far = FarEndLevel(WINDOW)
    seen: set[int | None] = set()
    for t, level in enumerate(levels):
        far.played(noise(rng, level))
        delay = 19 if t < 450 else 7
        echo = levels[t - delay] - 20.0 if t >= delay else -90.0
        far.heard(noise(rng, max(echo, -75.0)))
        if t >= 450 + 25:  # one estimate after the change
            seen.add(far.delay)
    assert 19 not in seen and far.delay == 7


def test_the_window_reference_when_told_not_to_measure() -> None:
    rng = np.random.default_rng(9)
    levels = agent_levels(rng, 400)
    far = FarEndLevel(WINDOW, measure_delay=False)
    for t, level in enumerate(levels):
        far.played(noise(rng, level))
        far.heard(noise(rng, levels[t - 3] - 20.0 if t >= 3 else -90.0))
    assert far.delay is None
    assert far.db() == pytest.approx(max(levels[-WINDOW:]), abs=1.0)


def test_silence_played_gives_no_reference() -> None:
    far = FarEndLevel(WINDOW)
    for _ in range(HISTORY + WINDOW + 50):
        far.played(bytes(640))
        far.heard(bytes(640))
    assert far.db() is None and far.delay is None


def test_a_line_silent_under_the_agent_expects_its_echo_under_the_noise() -> None:
    """No echo to find a delay for, but none to gate either: a caller's quiet onset said as the
    agent is held ("St-" of "Stop,") is not taken for the echo of the agent's last loud word."""
    rng = np.random.default_rng(11)
    far = FarEndLevel(WINDOW)
    for level in agent_levels(rng, 400):
        far.played(noise(rng, level))
        far.heard(bytes(640))  # digital silence: the caller listens, the line returns nothing
    reference = far.db()
    assert far.delay is None and reference is not None
    echo = far.echo_db()
    assert echo is not None and echo < reference + NO_ECHO_DB


def test_the_caller_over_the_agent_on_a_silent_line_is_not_measured_as_echo() -> None:
    """The caller's words in step with the agent's (as loud, at the same moments) are double talk,
    not an echo 0 dB down that would gate the caller's next words."""
    rng = np.random.default_rng(13)
    levels = agent_levels(rng, 600)
    far = FarEndLevel(WINDOW)
    for t, level in enumerate(levels):
        far.played(noise(rng, level))
        talking = t >= 300 and level > -50
        far.heard(noise(rng, level + float(rng.uniform(-3, 3))) if talking else bytes(640))
    assert far.loss_db is not None and far.loss_db <= NO_ECHO_DB


def test_the_echo_is_measured_on_a_short_greeting_before_the_history_is_full() -> None:
    rng = np.random.default_rng(11)
    greeting = [float(rng.uniform(-35, -10)) for _ in range(85)]  # 1.7 s of the agent speaking
    far = call(greeting + [-90.0] * 15, 9, -20.0, rng)  # 2 s into the call: HISTORY is 3 s
    assert HISTORY > 100 and far.delay == 9 and far.loss_db == pytest.approx(-20.0, abs=1.5)


def test_a_measured_echo_is_not_forgotten_in_the_agents_pauses() -> None:
    """Short words between long silences (the agent held and resumed, an answer's last words) look
    like a line that sends nothing back: on a line whose echo was measured, the loss stands (it
    fell to -54 dB on a -20 dB line, and the gate let the agent's echo through as the caller)."""
    rng = np.random.default_rng(21)
    speech = agent_levels(rng, 300)
    sparse = [float(rng.uniform(-30, -10)) if t % 30 < 4 else -90.0 for t in range(200)]
    far = call(speech + sparse, 9, -20.0, rng)
    assert far.loss_db == pytest.approx(-20.0, abs=1.5)
    silent_line = FarEndLevel(WINDOW)  # while a line that never echoed is still found silent
    for level in speech + sparse:
        silent_line.played(noise(rng, level))
        silent_line.heard(bytes(640))
    assert silent_line.loss_db is not None and silent_line.loss_db <= NO_ECHO_DB
