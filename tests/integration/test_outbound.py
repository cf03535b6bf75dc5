"""Outbound calls with an agent profile and a purpose (``voxbus.sip.dial`` with ``agent`` and
``context``): the person who answers (a sipp UAS) is greeted by that agent, which is told why it
called; a profile that does not exist, or a dial beyond the profile's outbound limits, is refused
before anything is dialled."""

from __future__ import annotations

import asyncio
import json

import pytest

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings, load_settings
from voxbus.schemas.base import Accepted, Rejected
from voxbus.schemas.events import CallStarted, Event, TtsRequested
from voxbus.schemas.messages import CallControl, CallState, DialRequest
from voxbus.supervisors.system import System

from .helpers import sipp_uas, udp_port_taken, until, wait_all_serving

pytestmark = pytest.mark.integration
GREETING = "Hello, this is Bright Smile dental calling with a reminder."
PURPOSE = "Remind Ann Lee of her cleaning tomorrow at 10:30; she may confirm, move or cancel it."


@pytest.fixture
def settings(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    outbound = {"dial_allow": ["sip:ann@127.0.0.1:*"], "max_calls": 1}
    reminders = {"agent": {"greeting": GREETING}, "outbound": outbound}
    monkeypatch.setenv("VOXBUS_AGENTS", json.dumps({"reminders": reminders}))
    return load_settings()


async def test_an_outbound_call_is_held_by_the_named_agent_told_why_it_called(
    system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    unknown = DialRequest(call_id="sip-out-unknown", uri="sip:ann@127.0.0.1:5999", agent="nobody")
    refused = await client.request(subjects.SIP_DIAL, unknown, Rejected, 10)
    assert "unknown agent profile 'nobody'" in refused.reason
    port = free_port()
    answering = asyncio.create_task(sipp_uas(port))
    await until(lambda: udp_port_taken(port))  # sipp listens
    call_id = "sip-out-reminder"
    events: list[Event] = []

    async def collect(event: Event, _msg: object) -> None:
        events.append(event)

    await client.subscribe(subjects.call_events(call_id), None, collect)
    dial = DialRequest(call_id=call_id, uri=f"sip:ann@127.0.0.1:{port}", agent="reminders", context=PURPOSE)
    await client.request(subjects.SIP_DIAL, dial, Accepted, 10)
    async with asyncio.timeout(60):
        while not any(isinstance(e, TtsRequested) for e in events):
            await asyncio.sleep(0.05)
    # the profile's own limits: one call up at once, and Ann's address only
    second = DialRequest(call_id="sip-out-second", uri=f"sip:ann@127.0.0.1:{port}", agent="reminders")
    refused = await client.request(subjects.SIP_DIAL, second, Rejected, 10)
    assert "outbound.max_calls" in refused.reason
    elsewhere = DialRequest(call_id="sip-out-bob", uri=f"sip:bob@127.0.0.1:{port}", agent="reminders")
    refused = await client.request(subjects.SIP_DIAL, elsewhere, Rejected, 10)
    assert "outbound.dial_allow" in refused.reason
    started = next(e for e in events if isinstance(e, CallStarted))
    assert started.agent == "reminders"
    assert next(e for e in events if isinstance(e, TtsRequested)).text == GREETING
    assert client.js is not None
    kv = await client.js.key_value(subjects.CALL_STATE_BUCKET)
    state = CallState.model_validate_json((await kv.get(call_id)).value or b"")
    assert state.purpose == PURPOSE and f"You placed this call; what it is about: {PURPOSE}" in state.context
    await client.publish(subjects.control(call_id), CallControl(call_id=call_id, action="hangup"))
    code, out = await asyncio.wait_for(answering, 30)
    assert code == 0, out
