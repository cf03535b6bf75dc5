"""Digest authentication at the SIP door, with a real PBX (sipp answering the challenge) and the
real system: the right password is answered, a wrong one refused with an event, a bare INVITE
challenged without counting against its source."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.schemas.events import CallStarted, Event, SipRejected
from voxbus.supervisors.system import System

from .helpers import sipp_command, until, wait_all_serving

pytestmark = pytest.mark.integration
SCENARIO = Path(__file__).parent / "sipp" / "caller_digest.xml"
PASSWORD = "the PBX's long secret"


@pytest.fixture
def trunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBX_PASSWORD", PASSWORD)
    monkeypatch.setenv("VOXBUS_SIP__AUTH__REQUIRED", "true")
    trunks = {"pbx": {"user": "pbx1", "password_env": "PBX_PASSWORD"}}
    monkeypatch.setenv("VOXBUS_SIP__AUTH__TRUNKS", json.dumps(trunks))


async def pbx_call(port: int, password: str) -> tuple[int, str]:
    command = sipp_command(["-sf", str(SCENARIO)], f"127.0.0.1:{port}", 1, "-au", "pbx1", "-ap", password)
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_a_pbx_with_the_right_password_is_answered_and_a_wrong_one_refused(
    trunk: None, settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    events: list[Event] = []

    async def collect(event: Event, _msg: Msg) -> None:
        events.append(event)

    await client.subscribe(subjects.ALL_CALL_EVENTS, None, collect)
    await client.subscribe(subjects.ALL_SYSTEM_EVENTS, None, collect)
    code, out = await pbx_call(settings.sip.port, "a wrong guess")
    assert code == 0, out
    await until(lambda: any(isinstance(e, SipRejected) for e in events), 10)  # the refusal's event
    refused = [e for e in events if isinstance(e, SipRejected)]
    assert [(e.code, e.reason) for e in refused] == [(403, "Forbidden: wrong credentials")]  # no 401 events
    assert not any(isinstance(e, CallStarted) for e in events)
    code, out = await pbx_call(settings.sip.port, PASSWORD)
    assert code == 0, out
    assert any(isinstance(e, CallStarted) and "pbx1@" in e.caller for e in events)
