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

from .helpers import pid_of, sipp_command
from .test_sip import SCENARIOS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or shutil.which("sipp") is None,
        reason="kamailio and sipp: make sip-peers",
    ),
]
KAMAILIO_CFG = Path(__file__).parents[2] / "deploy" / "kamailio" / "kamailio.cfg"
SHARDS = 3


async def kamailio_answering(front: int, kamailio: asyncio.subprocess.Process) -> None:
    """Wait until Kamailio answers an OPTIONS on its front port."""
    from .test_sip_door import udp_probe

    loop = asyncio.get_running_loop()
    with udp_probe() as (sock, local):
        for attempt in range(100):
            assert kamailio.returncode is None, "kamailio did not start"
            ping = request("OPTIONS", f"127.0.0.1:{front}", local, f"ping{attempt}")
            await loop.sock_sendto(sock, ping, ("127.0.0.1", front))
            try:
                await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.2)
                return
            except TimeoutError:
                continue
    raise AssertionError("kamailio does not answer OPTIONS")


@pytest.fixture
async def pool(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[System, int]]:
    """Three gateway shards (no models: audio both ways only) behind Kamailio."""
    ports = [free_port() for _ in range(SHARDS)]
    rtp = settings.sip.rtp_port
    workers = tuple(
        ("sip", f"sip-{i + 1}", ["--port", str(p), "--rtp-port", str(rtp + 200 * i)])
        for i, p in enumerate(ports)
    )
    system = System(settings, workers=workers)  # type: ignore[arg-type]
    await system.start()
    front = free_port()
    dispatcher = tmp_path / "dispatcher.list"
    dispatcher.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in ports))
    config = tmp_path / "kamailio.cfg"
    config.write_text(
        KAMAILIO_CFG.read_text()
        .replace("udp:127.0.0.1:5060", f"udp:127.0.0.1:{front}")
        .replace("/etc/kamailio/voxbus-dispatcher.list", str(dispatcher))
    )
    kamailio = await asyncio.create_subprocess_exec(
        "kamailio",
        "-f",
        str(config),
        "-DD",
        "-E",
        "-n",
        "1",
        "-Y",
        str(tmp_path / "run"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    (tmp_path / "run").mkdir(exist_ok=True)
    try:
        await kamailio_answering(front, kamailio)
        yield system, front
    finally:
        kamailio.terminate()
        await kamailio.wait()
        await system.stop()


async def sipp_calls(target: str, calls: int, timeout: float = 120) -> tuple[int, str]:
    command = sipp_command(["-sf", str(SCENARIOS / "caller_audio_dtmf.xml")], target, calls,
                           "-timeout", str(int(timeout)))  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_twelve_calls_through_kamailio_and_a_killed_shard(pool: tuple[System, int]) -> None:
    system, front = pool
    client = Bus(system.url, "test", creds=system.creds("admin"))
    await client.connect(attempts=5)
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
    await client.close()


def request(method: str, target: str, local: str, branch: str) -> bytes:
    lines = [
        f"{method} sip:voxbus@{target} SIP/2.0",
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{local}>;tag={branch}",
        f"To: <sip:voxbus@{target}>",
        f"Call-ID: {branch}@probe",
        f"CSeq: 1 {method}",
        f"Contact: <sip:probe@{local}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_the_front_answers_what_no_gateway_serves(pool: tuple[System, int]) -> None:
    """REGISTER gets 405 and an unknown method 501 (RFC 3261), a malformed INVITE its 4xx from
    Kamailio's sanity checks: none is left unanswered, none reaches a shard."""
    from tests.hostile_sip import cases

    from .test_sip_door import final_status, udp_probe

    _, front = pool
    target = ("127.0.0.1", front)
    loop = asyncio.get_running_loop()
    with udp_probe() as (sock, local):
        statuses = {}
        for method in ("REGISTER", "FROBNICATE"):
            await loop.sock_sendto(sock, request(method, f"127.0.0.1:{front}", local, method.lower()), target)
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
            statuses[method] = int(reply.split(b" ", 2)[1])
        assert statuses == {"REGISTER": 405, "FROBNICATE": 501}
        cseq = next(m for what, m, _ in cases(f"127.0.0.1:{front}", local) if what.startswith("CSeq"))
        assert await final_status(sock, target, cseq) == 400
