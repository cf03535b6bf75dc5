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
from voxbus.schemas.base import Accepted, Rejected
from voxbus.schemas.events import (
    CallEnded,
    CallStarted,
    DialResult,
    DtmfReceived,
    ErrorEvent,
    Event,
    SipRejected,
    TransferResult,
)
from voxbus.schemas.messages import AudioFrame, CallControl, DialRequest
from voxbus.supervisors.system import System

from .helpers import pid_of, sipp_command, sipp_uas, udp_port_taken, until, wait_all_serving

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp: make sip-peers"),
]
SCENARIOS = Path(__file__).parent / "sipp"


async def sipp(scenario: str, target: str, *extra: str, timeout: float = 60) -> tuple[int, str]:
    command = sipp_command(["-sf", str(SCENARIOS / scenario)], target, 1,
                           "-trace_err", "-error_file", "/dev/stderr", *extra)  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "recordings"
    monkeypatch.setenv("VOXBUS_SIP__RECORD_DIR", str(folder))
    return folder


async def test_sipp_call_with_audio_and_dtmf(
    recording: Path, settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
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
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 10)

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
    assert ended[0].frames_in == len(heard)
    line = ended[0].line  # the caller's RTP, as pjmedia counted it
    assert line is not None and line.packets > 100 and line.lost == 0  # the pcap: 144 packets
    assert line.jitter_buffer_max_ms >= line.jitter_buffer_ms >= 0
    # the call was recorded: one WAV, both directions (the greeting and the caller's speech)
    import wave

    import numpy as np

    path = recording / f"{call_id}.wav"
    await until(lambda: path.is_file() and path.stat().st_size > 44 and _wav_ok(path), 10)
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        assert w.getnframes() / w.getframerate() > 4.0
    assert np.abs(samples.astype(np.int32)).max() > 5000


async def collect(bus: Bus, subject: str) -> list[Event]:
    seen: list[Event] = []

    async def on_event(event: Event, _m: Msg) -> None:
        seen.append(event)

    await bus.subscribe(subject, None, on_event)
    return seen


async def test_bad_invites_get_their_sip_error_and_an_event(
    settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    rejected = await collect(client, subjects.system_event("sip.rejected"))
    target = f"127.0.0.1:{settings.sip.port}"
    for scenario in ("malformed_invite.xml", "malformed_sdp.xml", "unsupported_codecs.xml"):
        code, out = await sipp(scenario, target)
        assert code == 0, f"{scenario}: {out}"
    await until(lambda: {400, 488} <= {e.code for e in rejected if isinstance(e, SipRejected)}, 5)
    reasons = {e.code: e.reason for e in rejected if isinstance(e, SipRejected)}
    assert reasons[400].startswith(("malformed message dropped", "Bad SDP"))
    assert any("Bad SDP" in e.reason for e in rejected if isinstance(e, SipRejected))
    assert any("malformed" in e.reason and "CSeq" in e.reason for e in rejected if isinstance(e, SipRejected))
    assert 488 in reasons
    code, out = await sipp("caller_audio_dtmf.xml", target)  # and the next call is served
    assert code == 0, out


@pytest.fixture
def locked_door(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXBUS_SIP__ALLOW_FROM", '["10.0.0.0/8"]')


async def test_a_caller_from_a_source_not_allowed_is_refused(
    locked_door: None, settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    rejected = await collect(client, subjects.system_event("sip.rejected"))
    code, out = await sipp("not_allowed.xml", f"127.0.0.1:{settings.sip.port}")
    assert code == 0, out
    await until(lambda: any(isinstance(e, SipRejected) for e in rejected), 5)
    refusals = [e for e in rejected if isinstance(e, SipRejected)]
    assert refusals and refusals[0].code == 403 and refusals[0].remote.startswith("127.0.0.1:")


async def test_outbound_call_to_a_sipp_uas_and_the_agent_hangs_up(
    settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    uas_port = free_port()
    uas = asyncio.create_task(sipp_uas(uas_port))
    await until(lambda: udp_port_taken(uas_port), 10)  # sipp listens
    call_id = "sip-out-test"
    seen = await collect(client, subjects.call_events(call_id))
    reply = await client.request(
        subjects.SIP_DIAL, DialRequest(call_id=call_id, uri=f"sip:human@127.0.0.1:{uas_port}"), Accepted, 10
    )
    assert reply.worker_id == "sip-1"
    await until(lambda: any(isinstance(e, CallStarted) for e in seen), 30)
    results = [e for e in seen if isinstance(e, DialResult)]
    assert results[0].result == "answered"
    hangup = CallControl(call_id=call_id, action="hangup")
    assert await client.command(subjects.control(call_id), hangup, within_s=5.0, per_try_s=1.0)  # leg acks
    code, out = await uas
    assert code == 0, out
    await until(lambda: any(isinstance(e, CallEnded) for e in seen), 10)
    ended = next(e for e in seen if isinstance(e, CallEnded))
    assert ended.hangup_by == "agent"
    assert ended.line is not None  # read before the stream went, when the agent hangs up too


async def test_dialing_nobody_is_a_failed_dial_and_a_forbidden_destination_is_refused(
    system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    # toll fraud: only destinations in sip.dial_allow (default: loopback) are dialled
    premium = DialRequest(call_id="sip-out-premium", uri="sip:0900123@premium.example")
    refused = await client.request(subjects.SIP_DIAL, premium, Rejected, 10)
    assert "sip.dial_allow" in refused.reason
    call_id = "sip-out-nobody"
    seen = await collect(client, subjects.call_events(call_id))
    await client.request(
        subjects.SIP_DIAL,
        DialRequest(call_id=call_id, uri=f"sip:nobody@127.0.0.1:{free_port()}", timeout_s=5),
        Accepted,
        10,
    )
    await until(lambda: any(isinstance(e, DialResult) for e in seen), 40)
    result = next(e for e in seen if isinstance(e, DialResult))
    assert result.result in ("failed", "no_answer") and result.code >= 400


QUEUE = "sip:queue@127.0.0.1:5999"


@pytest.fixture
def human_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXBUS_SIP__TRANSFER_TARGET", QUEUE)


async def test_blind_transfer_to_the_human_queue_and_nowhere_else(
    human_queue: None, settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    seen = await collect(client, subjects.ALL_CALL_EVENTS)
    caller = asyncio.create_task(sipp("caller_transfer.xml", f"127.0.0.1:{settings.sip.port}"))
    await until(lambda: any(isinstance(e, CallStarted) for e in seen), 30)
    call_id = next(e for e in seen if isinstance(e, CallStarted)).call_id
    # a target outside sip.transfer_target and sip.transfer_allow is refused, whoever asks
    elsewhere = CallControl(call_id=call_id, action="transfer", target="sip:0900123@premium.example")
    await client.publish(subjects.control(call_id), elsewhere)
    await until(lambda: any(isinstance(e, ErrorEvent) and e.code == "ctl_failed" for e in seen), 10)
    queue = QUEUE
    await client.publish(
        subjects.control(call_id), CallControl(call_id=call_id, action="transfer", target=queue)
    )
    code, out = await caller
    assert code == 0, out
    await until(lambda: any(isinstance(e, CallEnded) for e in seen), 10)
    transfers = [e for e in seen if isinstance(e, TransferResult)]
    assert transfers and transfers[-1].final and transfers[-1].code == 200
    assert transfers[-1].target == queue


async def test_gateway_shuts_down_cleanly_with_a_call_up(settings: Settings, nats_url: str) -> None:
    import os
    import sys

    gateway = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voxbus",
        "--nats-url",
        nats_url,
        "gateway",
        "--id",
        "sip-9",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    bus = Bus(nats_url, "test")
    await bus.connect(attempts=5)
    try:
        await pid_of(bus, "sip", "sip-9")
        frames: list[AudioFrame] = []

        async def on_frame(frame: AudioFrame, _m: Msg) -> None:
            frames.append(frame)

        await bus.subscribe("voxbus.call.*.audio.in", AudioFrame, on_frame)
        caller = asyncio.create_task(sipp("caller_until_bye.xml", f"127.0.0.1:{settings.sip.port}"))
        await until(lambda: len(frames) > 25, 20)  # a call is up, its audio flowing
        gateway.terminate()
        code = await asyncio.wait_for(gateway.wait(), 20)
        stderr = (await gateway.stderr.read()).decode()  # type: ignore[union-attr]
        assert code == 0, stderr[-2000:]
        assert "Assertion" not in stderr and "core dumped" not in stderr
        sipp_code, out = await caller
        assert sipp_code == 0, out  # the caller got a BYE and answered it
    finally:
        await bus.close()


@pytest.fixture
def quick_media_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXBUS_SIP__MEDIA_TIMEOUT_S", "2")


async def test_a_call_whose_peer_sends_no_audio_is_ended_by_the_gateway(
    quick_media_timeout: None, settings: Settings, system: System, client: Bus
) -> None:
    """A peer gone without a BYE (here: a sipp caller that sends no RTP at all) would hold one of the
    gateway's four calls for ever; after sip.media_timeout_s the gateway hangs up."""
    await wait_all_serving(client)
    seen = await collect(client, subjects.ALL_CALL_EVENTS)
    code, out = await sipp("caller_until_bye.xml", f"127.0.0.1:{settings.sip.port}", timeout=30)
    assert code == 0, out  # the caller got a BYE and answered it
    await until(lambda: any(isinstance(e, CallEnded) for e in seen), 10)
    ended = next(e for e in seen if isinstance(e, CallEnded))
    assert ended.hangup_by == "system" and ended.frames_in > 0
    assert any(
        isinstance(e, ErrorEvent) and e.code == "no_media" and e.call_id == ended.call_id for e in seen
    )


def _wav_ok(path: Path) -> bool:
    import wave

    try:
        with wave.open(str(path)) as w:
            return w.getnframes() > 0
    except (wave.Error, EOFError):
        return False
