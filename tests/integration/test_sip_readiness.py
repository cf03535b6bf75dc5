"""A gateway admits calls only while the workers a call needs serve: before the LLM worker has
loaded its model, and after it is gone, INVITEs and OPTIONS probes get 503 (a SIP front such as
Kamailio then tries another node), and the gateway's heartbeat says whether it admits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg

from tests.hostile_sip import invite
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import Settings, load_settings
from voxbus.schemas.events import Event, SipRejected
from voxbus.schemas.messages import Heartbeat
from voxbus.supervisors.system import System

from .helpers import pid_of, running_system, until
from .test_sip import collect
from .test_sip_door import final_status, udp_probe

pytestmark = pytest.mark.integration


def options(target: str, local: str) -> bytes:
    """An OPTIONS probe, as Kamailio's dispatcher sends one."""
    unique = os.urandom(4).hex()
    return (
        f"OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe{unique}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p1\r\nTo: <sip:{target}>\r\n"
        f"Call-ID: probe-{unique}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
async def gateway_waiting_for_llm(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[System, Bus, Settings]]:
    """A gateway told that calls need an LLM worker, and no LLM worker yet."""
    monkeypatch.setenv("VOXBUS_SIP__WAIT_FOR_ROLES", '["llm"]')
    monkeypatch.setenv("VOXBUS_SIP__ROLES_STALE_S", "2")
    settings = load_settings()
    async with running_system(settings, (("sip", "sip-1"),)) as (system, client):
        yield system, client, settings


async def llm_worker(system: System) -> asyncio.subprocess.Process:
    """A real LLM worker (the test profile's model), started as the supervisor starts one."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voxbus",
        "--nats-url",
        system.url,
        "--nats-creds",
        str(system.creds("llm")),
        "worker",
        "llm",
        "--id",
        "llm-1",
    )


async def test_calls_wait_for_the_llm_worker_and_are_refused_again_when_it_is_gone(
    gateway_waiting_for_llm: tuple[System, Bus, Settings],
) -> None:
    system, client, settings = gateway_waiting_for_llm
    port = settings.sip.port
    beats: list[Heartbeat] = []

    async def on_beat(beat: Heartbeat, _msg: Msg) -> None:
        beats.append(beat)

    await client.subscribe(subjects.health("sip", "sip-1"), Heartbeat, on_beat)
    rejected: list[Event] = await collect(client, subjects.ALL_SYSTEM_EVENTS)
    await pid_of(client, "sip", "sip-1", 30)  # the gateway serves, but does not admit
    await until(lambda: bool(beats), 10)
    assert beats[-1].admitting is False
    target = ("127.0.0.1", port)
    with udp_probe() as (sock, local):
        assert await final_status(sock, target, invite(f"127.0.0.1:{port}", local, "early")) == 503
        assert await final_status(sock, target, options(f"127.0.0.1:{port}", local)) == 503
    await until(lambda: any(isinstance(e, SipRejected) and "not ready" in e.reason for e in rejected), 10)

    llm = await llm_worker(system)
    try:
        await pid_of(client, "sip", "sip-1", 120, admitting=True)  # the LLM's heartbeat heard
        with udp_probe() as (sock, local):
            assert await final_status(sock, target, options(f"127.0.0.1:{port}", local)) == 200
    finally:
        with contextlib.suppress(ProcessLookupError):
            llm.kill()
        await llm.wait()

    # no LLM worker beats any more: after sip.roles_stale_s the gateway refuses again
    await until(lambda: beats[-1].admitting is False, 20)
    with udp_probe() as (sock, local):
        assert await final_status(sock, target, options(f"127.0.0.1:{port}", local)) == 503
