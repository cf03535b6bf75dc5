"""Admission control across a machine's gateway shards: ``sip.machine_max_calls`` counts the calls
of every gateway of the machine (their counts on ``voxbus.sip.load.<machine>``), so that a shard
with room of its own still refuses a call the machine cannot carry."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg

from tests.hostile_sip import invite
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings
from voxbus.schemas.events import Event, SipRejected
from voxbus.schemas.messages import GatewayLoad
from voxbus.supervisors.system import System

from .helpers import pid_of, running_system, shard_workers, until
from .test_sip import collect, sipp
from .test_sip_door import final_status, udp_probe

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp: make sip-peers"),
]


@pytest.fixture
async def two_shards(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[System, Bus, list[int]]]:
    """Two gateway shards of one machine (no models) that together take one call."""
    monkeypatch.setenv("VOXBUS_SIP__MACHINE_MAX_CALLS", "1")
    ports = [free_port() for _ in range(2)]
    async with running_system(settings, shard_workers(settings, ports)) as (system, client):
        yield system, client, ports


async def test_a_shard_with_room_refuses_the_call_its_machine_cannot_carry(
    two_shards: tuple[System, Bus, list[int]], settings: Settings
) -> None:
    system, client, (first_port, second_port) = two_shards
    await asyncio.gather(pid_of(client, "sip", "sip-1", 30), pid_of(client, "sip", "sip-2", 30))
    loads: list[GatewayLoad] = []

    async def on_load(load: GatewayLoad, _msg: Msg) -> None:
        loads.append(load)

    await client.subscribe(subjects.sip_load(settings.sip.machine), GatewayLoad, on_load)
    rejected: list[Event] = await collect(client, subjects.ALL_SYSTEM_EVENTS)
    first = asyncio.create_task(sipp("caller_audio_dtmf.xml", f"127.0.0.1:{first_port}"))
    await until(lambda: any(load.gateway == "sip-1" and load.calls == 1 for load in loads), 30)
    await heard_by_sip_2(client, settings, loads, "probe-1")
    with udp_probe() as (sock, local):
        second = invite(f"127.0.0.1:{second_port}", local, "second")
        assert await final_status(sock, ("127.0.0.1", second_port), second) == 503
    await until(lambda: any(isinstance(e, SipRejected) and "machine full" in e.reason for e in rejected), 30)
    code, out = await first
    assert code == 0, out
    await until(lambda: [load.calls for load in loads if load.gateway == "sip-1"][-1] == 0, 30)
    await heard_by_sip_2(client, settings, loads, "probe-2")
    # the machine has room again as soon as the first shard's call is gone: the other shard answers
    code, out = await sipp("caller_audio_dtmf.xml", f"127.0.0.1:{second_port}")
    assert code == 0, out
    assert any(load.gateway == "sip-2" and load.calls == 1 for load in loads)


async def heard_by_sip_2(client: Bus, settings: Settings, loads: list[GatewayLoad], probe: str) -> None:
    """sip-2 has handled every count published before now once it answers an ask sent now: NATS
    delivers a subject's messages to each subscriber in the order the server took them (on a
    busy machine sip-2 handled sip-1's count after the test had seen it, and took a call)."""
    await client.publish(
        subjects.sip_load(settings.sip.machine), GatewayLoad(gateway=probe, calls=0, ask=True)
    )
    await until(lambda: any(load.gateway == "sip-2" and load.answers == probe for load in loads), 30)
