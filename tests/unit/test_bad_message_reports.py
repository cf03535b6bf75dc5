"""A flood of bad messages is reported in a burst and then about once a second, each later report
counting the ones before it that were not (the log and the events stream stay usable)."""

from __future__ import annotations

import pytest

from voxbus.bus import connection
from voxbus.bus.codec import BadMessage, decode_event
from voxbus.bus.connection import BAD_REPORTS_BURST, Bus
from voxbus.schemas import events as ev
from voxbus.schemas.events import ErrorEvent


def reported(bus: Bus) -> list[ErrorEvent]:
    out = []
    for subject, data, _ in bus.outbox.queued:
        event = decode_event(subject, data)
        assert isinstance(event, ErrorEvent)
        out.append(event)
    return out


def test_a_flood_is_reported_in_a_burst_then_once_a_second_with_a_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(connection.time, "monotonic", lambda: now[0])
    bus = Bus("nats://127.0.0.1:1", "stt-1")
    bad = BadMessage("voxbus.call.c1.audio.in", "not msgpack (ExtraData)")
    for _ in range(BAD_REPORTS_BURST + 30):
        bus.report_bad(bad)
    events = reported(bus)
    assert len(events) == BAD_REPORTS_BURST
    assert all(e.code == "bad_message" and e.call_id == "c1" for e in events)
    assert events[0].message == "not msgpack (ExtraData)"

    now[0] += 1.0  # a second later: one more report, saying how many went unreported
    bus.report_bad(bad)
    last = reported(bus)[-1]
    assert len(reported(bus)) == BAD_REPORTS_BURST + 1
    assert last.message == "not msgpack (ExtraData) (and 30 bad messages before it, not reported one by one)"
    now[0] += 2.0
    bus.report_bad(bad)
    assert reported(bus)[-1].message == "not msgpack (ExtraData)"


def test_an_event_the_credential_may_not_publish_never_blocks_the_outbox() -> None:
    """The console may publish system events only: its report of a bad call event goes out as a
    system error (naming the subject), instead of waiting forever for an acknowledgement."""
    bus = Bus("nats://127.0.0.1:1", "console-1")
    bus._role = "console"
    bus.report_bad(BadMessage("voxbus.call.c1.evt.stt.final", "schema: text: missing"))
    bus.emit(ev.StateChanged(call_id="c1", state="thinking"))  # not the console's to say: dropped
    [(subject, data, _)] = bus.outbox.queued
    assert subject == "voxbus.sys.evt.error"
    event = decode_event(subject, data)
    assert isinstance(event, ErrorEvent) and event.subject == "voxbus.call.c1.evt.stt.final"


def test_an_event_larger_than_the_stream_keeps_is_dropped_not_queued() -> None:
    bus = Bus("nats://127.0.0.1:1", "llm-1")
    bus.emit(ev.LlmDone(call_id="c1", gen=1, text="x" * 300_000))
    bus.emit(ev.LlmDone(call_id="c1", gen=2, text="It is."))
    assert [decode_event(s, d).gen for s, d, _ in bus.outbox.queued] == [2]  # type: ignore[union-attr]
