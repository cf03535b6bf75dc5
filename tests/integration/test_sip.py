"""Real SIP calls into the gateway, from real peers (sipp from Debian's sip-tester)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings
from voxbus.schemas.events import CallEnded, CallStarted, DtmfReceived, Event
from voxbus.schemas.messages import AudioFrame
from voxbus.supervisors.system import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp: make sip-peers"),
]
SCENARIOS = Path(__file__).parent / "sipp"


async def sipp(scenario: str, target: str, *extra: str, timeout: float = 60) -> tuple[int, str]:
    port, media = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(SCENARIOS / scenario),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media),
        "-nostdin",
        "-trace_err",
        "-error_file",
        "/dev/stderr",
        *extra,
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(errors="replace")


async def wait_gateway(bus: Bus) -> None:
    from .test_recovery import pid_of

    await pid_of(bus, "sip", "sip-1")


async def test_sipp_call_with_audio_and_dtmf(settings: Settings, system: System, client: Bus) -> None:
    await wait_gateway(client)
    events: list[Event] = []
    frames: dict[str, list[AudioFrame]] = {}

    async def on_event(event: Event, _m: Msg) -> None:
        events.append(event)

    async def on_frame(frame: AudioFrame, _m: Msg) -> None:
        frames.setdefault(frame.call_id, []).append(frame)

    await client.subscribe(subjects.ALL_CALL_EVENTS, None, on_event)
    await client.subscribe("voxbus.call.*.audio.in", AudioFrame, on_frame)
    code, out = await sipp("caller_audio_dtmf.xml", f"127.0.0.1:{settings.sip.port}")
    assert code == 0, out
    await asyncio.sleep(0.5)

    started = [e for e in events if isinstance(e, CallStarted)]
    assert len(started) == 1 and started[0].transport == "sip"
    call_id = started[0].call_id
    heard = frames[call_id]
    assert len(heard) > 150  # several seconds of 20 ms frames
    assert [f.seq for f in heard] == list(range(len(heard)))
    assert (
        max(
            max(abs(int.from_bytes(f.pcm[i : i + 2], "little", signed=True)) for i in range(0, 640, 2))
            for f in heard
        )
        > 5000
    )  # the pcap's speech
    digits = [e for e in events if isinstance(e, DtmfReceived) and e.call_id == call_id]
    assert [d.digit for d in digits] == ["5"] and digits[0].method == "rfc2833"
    ended = [e for e in events if isinstance(e, CallEnded) and e.call_id == call_id]
    assert ended and ended[0].hangup_by == "caller" and ended[0].codec == "PCMA"
