"""A pool of gateway shards behind Kamailio (dispatcher): more than 4 calls, and failover."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings
from voxbus.schemas.events import Event, WorkerRestarted
from voxbus.supervisors.system import System

from .helpers import kamailio_front, pid_of, shard_workers, sipp_command
from .test_sip import SCENARIOS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or shutil.which("sipp") is None,
        reason="kamailio and sipp: make sip-peers",
    ),
]
SHARDS = 3


@pytest.fixture
async def pool(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[System, int, Bus]]:
    """Three gateway shards (no models: audio both ways only) behind Kamailio, and a client.

    Kamailio starts once every shard serves: its dispatcher probes the shards at once, and a
    shard not listening yet is taken out until the next probe, 2 s later (4 of 12 calls failed
    so on a loaded machine)."""
    ports = [free_port() for _ in range(SHARDS)]
    system = System(settings, workers=shard_workers(settings, ports))  # type: ignore[arg-type]
    await system.start()
    client = Bus(system.url, "test", creds=system.creds("admin"))
    try:
        await client.connect(attempts=5)
        await asyncio.gather(*(pid_of(client, "sip", f"sip-{i}") for i in range(1, SHARDS + 1)))
        async with kamailio_front(ports, tmp_path) as front:
            yield system, front, client
    finally:
        await client.close()
        await system.stop()


async def sipp_calls(target: str, calls: int, timeout: float = 120) -> tuple[int, str]:
    command = sipp_command(["-sf", str(SCENARIOS / "caller_audio_dtmf.xml")], target, calls,
                           "-timeout", str(int(timeout)))  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_twelve_calls_through_kamailio_and_a_killed_shard(pool: tuple[System, int, Bus]) -> None:
    _, front, client = pool
    restarts: list[Event] = []

    async def on_restart(event: Event, _m: Msg) -> None:
        restarts.append(event)

    await client.subscribe(subjects.system_event("worker.restarted"), None, on_restart)
    pids = {i: await pid_of(client, "sip", f"sip-{i}") for i in range(1, SHARDS + 1)}
    code, out = await sipp_calls(f"127.0.0.1:{front}", 12)
    assert code == 0, out[-3000:]

    os.kill(pids[2], signal.SIGKILL)
    code, out = await sipp_calls(f"127.0.0.1:{front}", 8)
    assert code == 0, out[-3000:]
    assert any(isinstance(e, WorkerRestarted) and e.worker_id == "sip-2" for e in restarts)
    assert await pid_of(client, "sip", "sip-2") != pids[2]


async def test_the_front_answers_what_no_gateway_serves(pool: tuple[System, int, Bus]) -> None:
    """REGISTER gets 405 and an unknown method 501 (RFC 3261), a malformed INVITE its 4xx from
    Kamailio's sanity checks: none is left unanswered, none reaches a shard."""
    from tests.hostile_sip import cases, out_of_dialog

    from .test_sip_door import final_status, udp_probe

    _, front, _ = pool
    target = ("127.0.0.1", front)
    loop = asyncio.get_running_loop()
    with udp_probe() as (sock, local):
        statuses = {}
        for method in ("REGISTER", "FROBNICATE"):
            await loop.sock_sendto(sock, out_of_dialog(method, f"127.0.0.1:{front}", local), target)
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
            statuses[method] = int(reply.split(b" ", 2)[1])
        assert statuses == {"REGISTER": 405, "FROBNICATE": 501}
        cseq = next(m for what, m, _ in cases(f"127.0.0.1:{front}", local) if what.startswith("CSeq"))
        assert await final_status(sock, target, cseq) == 400
