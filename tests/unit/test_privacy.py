"""Redaction of the events themselves (``console.redact_events``): what people said and what
tools were given is redacted before an event leaves the process; nothing else changes."""

from __future__ import annotations

import asyncio

from voxbus.bus.connection import Bus
from voxbus.console.settings import DEFAULT_REDACT
from voxbus.privacy import REDACTED, Redactor
from voxbus.schemas.events import CallStarted, SttFinal, ToolCalled, ToolResult, TurnMetrics

CARD = "4111 1111 1111 1111"


def test_spoken_fields_and_tool_arguments_are_redacted_the_rest_kept() -> None:
    redact = Redactor(DEFAULT_REDACT)
    said = SttFinal(
        call_id="c1",
        text=f"my card is {CARD} and my mail ann@example.org",
        start_ms=0,
        end_ms=900,
        compute_s=0.1,
    )
    clean = redact.event(said)
    assert clean.text == f"my card is {REDACTED} and my mail {REDACTED}"  # type: ignore[attr-defined]
    assert said.text.startswith("my card is 4111")  # the original is left alone
    assert (clean.call_id, clean.end_ms, clean.type) == ("c1", 900, "stt.final")  # type: ignore[attr-defined]
    tool = ToolCalled(
        call_id="c1", name="find_patient", arguments={"phone": "+44 20 7946 0958", "day": "friday"}
    )
    assert redact.event(tool).arguments == {"phone": REDACTED, "day": "friday"}  # type: ignore[attr-defined]
    result = ToolResult(
        call_id="c1", name="find_patient", call_key="k", result={"rows": [{"mail": "b@example.org"}]},
        latency_ms=3.0, attempts=1,
    )  # fmt: skip
    assert redact.event(result).result == {"rows": [{"mail": REDACTED}]}  # type: ignore[attr-defined]
    metrics = TurnMetrics(call_id="c1", turn=1, gen=1, user_text=f"it is {CARD}", agent_text=f"Got {CARD}.")
    clean_metrics = redact.event(metrics)
    assert CARD not in clean_metrics.model_dump_json() and clean_metrics.turn == 1  # type: ignore[attr-defined]
    started = CallStarted(call_id="c1", caller="<sip:+442079460958@pbx>")
    assert redact.event(started) is started  # who called is the call's identity, not its content


async def test_a_bus_with_a_redactor_queues_redacted_events() -> None:
    bus = Bus("nats://127.0.0.1:1", name="t")  # never connected: emit only queues
    bus.redactor = Redactor(DEFAULT_REDACT)
    bus.emit(SttFinal(call_id="c1", text=f"it is {CARD}", start_ms=0, end_ms=1, compute_s=0.1))
    _subject, data, _id = bus.outbox.queued[0]
    assert CARD.encode() not in data and REDACTED.encode() in data
    await asyncio.sleep(0)
