"""Which subjects carry events (JetStream publishes that only the stream may answer)."""

from __future__ import annotations

from voxbus.bus import subjects


def test_event_subjects_are_told_from_commands_and_audio() -> None:
    assert subjects.is_event(subjects.call_event("c1", "turn.metrics"))
    assert subjects.is_event(subjects.system_event("worker.restarted"))
    assert not subjects.is_event(subjects.control("c1"))
    assert not subjects.is_event(subjects.audio_in("c1"))
    assert not subjects.is_event("voxbus.sys.health.stt.stt-1")
    assert not subjects.is_event("other.call.c1.evt.x")
