"""Admission through Kamailio: a gateway that is full answers 503 and Kamailio's failure route
gives the call to another shard, so callers land where there is room instead of slowing the calls
a full node holds."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings
from voxbus.schemas.events import Event, SipRejected
from voxbus.schemas.messages import AudioFrame, CallControl, GatewayLoad
from voxbus.supervisors.system import System

from .helpers import kamailio_front, pid_of, shard_workers, until
from .test_sip import collect, sipp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or shutil.which("sipp") is None,
        reason="kamailio and sipp: make sip-peers",
    ),
]


@pytest.fixture
async def two_nodes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[Bus, list[int], int]]:
    """Two gateway shards (no models) of one call each, behind Kamailio's shipped configuration."""
    monkeypatch.setenv("VOXBUS_SIP__MAX_CALLS", "1")
    # a machine limit that never binds, so that each shard publishes its count of calls (the test
    # reads from them which shard took each call)
    monkeypatch.setenv("VOXBUS_SIP__MACHINE_MAX_CALLS", "10")
    ports = [free_port() for _ in range(2)]
    system = System(settings, workers=shard_workers(settings, ports))  # type: ignore[arg-type]
    await system.start()
    client = Bus(system.url, name="test-client", source="test", creds=system.creds("admin"))
    try:
        await client.connect(attempts=5)
        await asyncio.gather(pid_of(client, "sip", "sip-1", 30), pid_of(client, "sip", "sip-2", 30))
        async with kamailio_front(ports, tmp_path) as front:
            yield client, ports, front
    finally:
        await client.close()
        await system.stop()


async def test_a_full_node_hands_the_call_to_one_with_room(
    two_nodes: tuple[Bus, list[int], int], settings: Settings
) -> None:
    client, (first_port, _), front = two_nodes
    loads: list[GatewayLoad] = []

    async def on_load(load: GatewayLoad, _msg: Msg) -> None:
        loads.append(load)

    await client.subscribe(subjects.sip_load(settings.sip.machine), GatewayLoad, on_load)
    system_events: list[Event] = await collect(client, subjects.ALL_SYSTEM_EVENTS)
    calls_heard: list[str] = []

    async def on_audio(frame: AudioFrame, _msg: Msg) -> None:
        if frame.call_id not in calls_heard:
            calls_heard.append(frame.call_id)

    await client.subscribe(subjects.audio_in("*"), AudioFrame, on_audio)
    # sip-1 is full: a caller reached it straight, and stays on until voxbus hangs up
    held = asyncio.create_task(sipp("caller_until_bye.xml", f"127.0.0.1:{first_port}", timeout=120))
    await until(lambda: any(load.gateway == "sip-1" and load.calls == 1 for load in loads), 30)
    await until(lambda: bool(calls_heard), 30)
    held_call = calls_heard[0]
    # two calls through Kamailio, one after the other: its round robin offers one of them to sip-1
    # first, which refuses it; sip-2 serves both
    for _ in range(2):
        code, out = await sipp("caller_audio_dtmf.xml", f"127.0.0.1:{front}")
        assert code == 0, out[-3000:]
    refused = [e for e in system_events if isinstance(e, SipRejected) and "gateway full" in e.reason]
    assert refused and all(e.source.endswith("sip-1") for e in refused), refused
    assert calls_taken(loads, "sip-2") == 2
    assert calls_taken(loads, "sip-1") == 1
    # the call the full node held went on all along: it ends now, when voxbus hangs it up
    assert not held.done(), "the call the full node holds was dropped"
    hangup = CallControl(call_id=held_call, action="hangup")
    assert await client.command(subjects.control(held_call), hangup, within_s=5.0, per_try_s=1.0)
    code, out = await held
    assert code == 0, out[-3000:]


def calls_taken(loads: list[GatewayLoad], gateway: str) -> int:
    """How many times ``gateway``'s count of calls went up."""
    counts = [0] + [load.calls for load in loads if load.gateway == gateway]
    return sum(later > earlier for earlier, later in itertools.pairwise(counts))
