"""The console's call records and KPIs, from real event objects into a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxbus.console.kpi import compute_kpis
from voxbus.console.records import call_record, calls_before, calls_of_caller, erase_records, list_calls
from voxbus.console.settings import DEFAULT_REDACT
from voxbus.console.store import CallRecords
from voxbus.schemas.events import (
    BargeIn,
    CallEnded,
    CallStarted,
    Event,
    OperatorActed,
    SttFinal,
    ToolResult,
    TransferResult,
    TtsRequested,
    TurnMetrics,
)
from voxbus.schemas.messages import Heartbeat

T0 = 1_800_000_000.0


def answered(call_id: str, gen: int, ts: float, latency_ms: float, said: str) -> list[Event]:
    return [
        SttFinal(
            call_id=call_id,
            ts=ts,
            text="I need to move my appointment.",
            compute_s=0.1,
            start_ms=0,
            end_ms=900,
        ),
        TtsRequested(call_id=call_id, gen=gen, ts=ts + 0.5, text=said, index=0),
        TtsRequested(call_id=call_id, gen=gen, ts=ts + 0.6, text="Which day suits you?", index=1),
        TurnMetrics(
            call_id=call_id, gen=gen, ts=ts + 2, user_text="", agent_text=said, first_audio_ms=latency_ms
        ),
    ]


@pytest.fixture
def records(tmp_path: Path) -> CallRecords:
    store = CallRecords(tmp_path / "console.sqlite", DEFAULT_REDACT)
    calls: list[Event] = [
        # resolved: two answers, one barge-in, a tool did the caller's business
        CallStarted(call_id="a", ts=T0, caller="+4411", called="clinic", transport="sip"),
        *answered("a", 2, T0 + 5, 600.0, "Sure."),
        *answered("a", 3, T0 + 15, 900.0, "Done."),
        BargeIn(
            call_id="a",
            gen=3,
            ts=T0 + 16,
            decision="interrupt",
            reason="words",
            onset_ts=T0 + 16,
            heard_text="Done",
        ),
        ToolResult(call_id="a", ts=T0 + 17, name="book", call_key="k", latency_ms=40, attempts=1),
        CallEnded(call_id="a", ts=T0 + 60, duration_s=60, hangup_by="caller"),
        # transferred
        CallStarted(call_id="b", ts=T0 + 100, caller="+4422"),
        *answered("b", 2, T0 + 105, 700.0, "Let me put you through."),
        TransferResult(call_id="b", ts=T0 + 110, target="sip:desk@pbx", code=202),
        CallEnded(call_id="b", ts=T0 + 111, duration_s=11, hangup_by="agent"),
        # abandoned: the caller left before any answer
        CallStarted(call_id="c", ts=T0 + 200, caller="+4411"),
        CallEnded(call_id="c", ts=T0 + 203, duration_s=3, hangup_by="caller"),
    ]
    for seq, event in enumerate(calls, start=1):
        store.apply(seq, event)
    return store


def test_kpis_match_what_happened(records: CallRecords) -> None:
    records.sample_cpu(Heartbeat(role="llm", worker_id="llm-1", pid=7, cpu_s=100.0), T0)
    records.sample_cpu(Heartbeat(role="llm", worker_id="llm-1", pid=7, cpu_s=190.0), T0 + 250)
    kpis = compute_kpis(records, T0 - 1, T0 + 300, price_per_core_hour=0.036)
    assert (kpis.calls, kpis.ended, kpis.abandoned, kpis.turns) == (3, 3, 1, 3)
    assert kpis.transfer_rate == pytest.approx(1 / 3) and kpis.resolution_rate == pytest.approx(1 / 3)
    assert kpis.goal_met_rate == pytest.approx(1 / 3)
    assert kpis.avg_handling_s == pytest.approx((60 + 11 + 3) / 3)
    assert kpis.barge_ins_per_call == pytest.approx(1 / 3)
    assert kpis.latency_p50_ms == pytest.approx(700.0)
    assert kpis.cpu_s_per_call == pytest.approx(30.0) and kpis.cost_per_call == pytest.approx(
        30 / 3600 * 0.036
    )
    assert compute_kpis(records, T0 + 150, T0 + 300, 0.036).calls == 1  # only call c started then


def test_the_transcript_marks_interruptions_and_operators(records: CallRecords) -> None:
    record = call_record(records, "a")
    assert record is not None and record.call.outcome == "resolved" and record.call.tools_ok == 1
    agent = [line for line in record.transcript if line.speaker == "agent"]
    assert agent[0].text == "Sure. Which day suits you?" and agent[0].mark == ""
    assert agent[1].text == "Done" and agent[1].mark == "interrupted"  # what the caller heard of it
    records.apply(
        100, OperatorActed(call_id="a", ts=T0 + 30, operator="ann", action="guide", text="Offer Friday")
    )
    lines = call_record(records, "a").transcript  # type: ignore[union-attr]
    assert any(line.speaker == "operator ann" and "Offer Friday" in line.text for line in lines)
    assert [c.call_id for c in list_calls(records)] == ["c", "b", "a"]


def test_an_event_delivered_twice_is_written_once(records: CallRecords) -> None:
    before = call_record(records, "a")
    records.apply(3, SttFinal(call_id="a", ts=T0 + 7, text="again", compute_s=0.1, start_ms=0, end_ms=900))
    assert call_record(records, "a") == before


def test_card_numbers_phone_numbers_and_mail_addresses_never_reach_the_disk(tmp_path: Path) -> None:
    store = CallRecords(tmp_path / "r.sqlite", DEFAULT_REDACT)
    said = (
        "My card is 4111 1111 1111 1111, call 07700 900123 or mail jo.doe@example.com on 2026-12-01 at 10:30."
    )
    store.apply(1, SttFinal(call_id="x", ts=T0, text=said, compute_s=0.1, start_ms=0, end_ms=900))
    text = call_record(store, "x").transcript[0].text  # type: ignore[union-attr]
    assert "4111" not in text and "900123" not in text and "example.com" not in text
    assert text.count("[redacted]") == 3 and "2026-12-01 at 10:30" in text  # dates and times stay
    assert b"4111 1111" not in (tmp_path / "r.sqlite").read_bytes()
    assert oct((tmp_path / "r.sqlite").stat().st_mode & 0o777) == "0o600"


def test_erase_by_caller_removes_exactly_that_callers_calls(records: CallRecords) -> None:
    assert sorted(calls_of_caller(records, "+4411")) == ["a", "c"]
    assert erase_records(records, calls_of_caller(records, "+4411")) == 2
    assert [c.call_id for c in list_calls(records)] == ["b"]
    assert records.db.execute("SELECT COUNT(*) FROM lines WHERE call_id IN ('a', 'c')").fetchone()[0] == 0
    assert calls_before(records, T0 + 150) == ["b"]
