"""The bus is locked: anonymous clients are refused, each role may only do its own work, and a
third party gets a credential of its own (`voxbus creds`) without a restart."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus, BusUnreachable
from voxbus.config import Settings
from voxbus.schemas.messages import CallControl
from voxbus.supervisors.system import System, auth_dir, grant, server_config_file

from .helpers import until

pytestmark = pytest.mark.integration


async def connected(system: System, role: str, creds: object = None) -> Bus:
    bus = Bus(system.url, f"test-{role}", creds=creds or system.creds(role))  # type: ignore[arg-type]
    await bus.connect(attempts=3)
    return bus


async def test_anonymous_and_wrong_role_clients_are_refused(
    settings: Settings, system: System, client: Bus
) -> None:
    with pytest.raises(BusUnreachable, match="(?i)authorization"):
        await Bus(system.url, "anonymous").connect(attempts=2)

    seen: list[CallControl] = []

    async def on_ctl(command: CallControl, _m: Msg) -> None:
        seen.append(command)

    await client.subscribe(subjects.control("c1"), CallControl, on_ctl)
    tts = await connected(system, "tts")
    agent = await connected(system, "agent")
    try:
        # the TTS worker's credential may not hang up a call; the agent's may
        await tts.publish(subjects.control("c1"), CallControl(call_id="c1", action="hangup"))
        await until(lambda: bool(tts.permission_errors), 5)
        assert "voxbus.call.c1.ctl" in tts.permission_errors[0]
        await agent.publish(subjects.control("c1"), CallControl(call_id="c1", action="hangup"))
        await until(lambda: len(seen) == 1, 5)
        await client.nc.flush()
        assert [c.action for c in seen] == ["hangup"] and not agent.permission_errors
        # nor may the TTS worker answer in place of the LLM worker
        await tts.subscribe(subjects.LLM_GENERATE, None, lambda *_: asyncio.sleep(0))
        await until(lambda: len(tts.permission_errors) == 2, 5)
    finally:
        await tts.close()
        await agent.close()


async def test_a_third_party_reader_sees_events_but_never_audio(settings: Settings, system: System) -> None:
    path = grant(settings, "reader", "crm")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(auth_dir(settings).stat().st_mode) == 0o700
    secret = json.loads(path.read_text())["password"]
    for stored in (auth_dir(settings) / "users.json", server_config_file(settings)):
        assert secret not in stored.read_text()  # the server keeps only bcrypt hashes
    reader = await connected(system, "reader", path)  # the server read its users again
    try:
        events: list[object] = []

        async def on_event(event: object, _m: Msg) -> None:
            events.append(event)

        await reader.subscribe(subjects.ALL_SYSTEM_EVENTS, None, on_event)
        await reader.subscribe(subjects.audio_in("*"), None, on_event)
        await until(lambda: len(reader.permission_errors) == 1, 5)
        assert "audio.in" in reader.permission_errors[0]
        admin = await connected(system, "admin")
        try:
            from voxbus.schemas.events import ErrorEvent

            admin.emit(ErrorEvent(code="test", message="seen by the reader"))
            await until(lambda: len(events) == 1, 5)
        finally:
            await admin.close()
    finally:
        await reader.close()
