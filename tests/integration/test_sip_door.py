"""The SIP door against INVITEs that RFC 3261 says to refuse (after RFC 4475's semantic cases):
each gets its status, never 200, nothing restarts, and a real call placed afterwards is served."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pytest
from nats.aio.msg import Msg

from tests.hostile_sip import cases, invite, out_of_dialog
from tests.sip_mutations import mutated_messages
from tests.sip_probe import Prober
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.schemas.events import CallEnded, CallStarted, SipRejected, WorkerRestarted
from voxbus.schemas.messages import AudioFrame
from voxbus.supervisors.system import System

from .helpers import until, wait_all_serving
from .test_sip import collect, sipp

pytestmark = pytest.mark.integration


def ack_for(invite: bytes, response: bytes) -> bytes:
    """The ACK of a non-2xx final response (RFC 3261 17.1.1.3), so that the gateway stops
    retransmitting it."""
    invite_headers = dict(
        line.split(": ", 1) for line in invite.decode().split("\r\n\r\n")[0].split("\r\n")[1:]
    )
    to = next(line for line in response.decode().split("\r\n") if line.lower().startswith(("to:", "t:")))
    request_uri = invite.decode().split(" ", 2)[1]
    lines = [
        f"ACK {request_uri} SIP/2.0",
        f"Via: {invite_headers['Via']}",
        "Max-Forwards: 70",
        f"From: {invite_headers['From']}",
        to,
        f"Call-ID: {invite_headers['Call-ID']}",
        "CSeq: 1 ACK",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextlib.contextmanager
def udp_probe() -> Iterator[tuple[socket.socket, str]]:
    """A UDP socket on loopback to send hand-made requests from, and its host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock, f"127.0.0.1:{sock.getsockname()[1]}"


async def final_status(sock: socket.socket, target: tuple[str, int], message: bytes) -> int:
    """Send a request over UDP and return the status of its final response (an INVITE's refusal
    is acknowledged)."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(sock, message, target)
    while True:
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
        status = int(data.split(b" ", 2)[1])
        if status >= 200:
            if status >= 300 and message.startswith(b"INVITE "):
                await loop.sock_sendto(sock, ack_for(message, data), target)
            return status


@pytest.fixture
def door_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event for every refusal of the test (the gateway process reads the environment)."""
    monkeypatch.setenv("VOXBUS_SIP__REJECTED_EVENTS", "50")


@pytest.fixture
def quick_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXBUS_SIP__BLOCK_AFTER", "5")
    monkeypatch.setenv("VOXBUS_SIP__BLOCK_S", "3")


async def test_invites_the_rfc_refuses_get_their_status_and_the_next_call_is_served(
    door_budget: None, settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    rejected = await collect(client, subjects.system_event("sip.rejected"))
    restarts = await collect(client, subjects.system_event("worker.restarted"))
    target = ("127.0.0.1", settings.sip.port)
    with udp_probe() as (sock, local):
        answers = {
            what: await final_status(sock, target, message)
            for what, message, _ in cases(f"127.0.0.1:{settings.sip.port}", local)
        }
        methods = {
            method: await final_status(sock, target, out_of_dialog(method, f"{target[0]}:{target[1]}", local))
            for method in ("OPTIONS", "REGISTER", "SUBSCRIBE", "FOO", "BYE")
        }
    expected = {what: status for what, _, status in cases("x", "y")}
    assert answers == expected
    # voxbus is no registrar and has no presence: every request gets its answer (RFC 3261 8.2.1)
    # and a BYE that matches no dialog its 481 (RFC 3261 15.1.2)
    assert methods == {"OPTIONS": 200, "REGISTER": 405, "SUBSCRIBE": 405, "FOO": 501, "BYE": 481}
    # every refusal is an event
    await until(lambda: {400, 406, 420} <= {e.code for e in rejected if isinstance(e, SipRejected)}, 5)
    code, out = await sipp("caller_audio_dtmf.xml", f"127.0.0.1:{settings.sip.port}")
    assert code == 0, out
    assert not [e for e in restarts if isinstance(e, WorkerRestarted)]


@pytest.fixture
def no_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message reaches the parser (as behind Kamailio, which blocks floods itself)."""
    monkeypatch.setenv("VOXBUS_SIP__BLOCK_AFTER", "0")


async def test_mutated_requests_get_proper_answers_and_the_next_call_is_served(
    no_block: None, settings: Settings, system: System, client: Bus
) -> None:
    """The short form of ``bench/sip_torture.py --mutations``: 300 mutated requests of every method
    at 100 a second. What is answered is a proper SIP response; what is not is a message no one
    could answer (no Via, a mangled request line, beyond pjsip's 4,000-byte datagram limit)."""
    await wait_all_serving(client)
    restarts = await collect(client, subjects.system_event("worker.restarted"))
    prober = Prober(("127.0.0.1", settings.sip.port), ignore=())
    listening = asyncio.create_task(prober.listen())
    cases = mutated_messages(300, f"127.0.0.1:{settings.sip.port}", f"127.0.0.1:{prober.port}", seed=17)
    for _, _, message in cases:
        await prober.send(message)
        await asyncio.sleep(0.01)
    # the gateway reads its socket in order: once a last OPTIONS is answered, all before it were read
    await prober.send(
        out_of_dialog("OPTIONS", f"127.0.0.1:{settings.sip.port}", f"127.0.0.1:{prober.port}", "last")
    )
    await until(lambda: "last@probe" in prober.finals, 10)
    listening.cancel()
    assert not prober.improper, prober.improper[:3]
    assert len(prober.finals) > 30, prober.finals  # about 1 in 6 is answerable
    statuses = set(prober.finals.values())
    assert {400, 405, 481} <= statuses, statuses
    code, out = await sipp("caller_audio_dtmf.xml", f"127.0.0.1:{settings.sip.port}")
    assert code == 0, out
    assert not [e for e in restarts if isinstance(e, WorkerRestarted)]


async def test_a_source_that_keeps_sending_garbage_is_blocked_for_a_while(
    quick_block: None, settings: Settings, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    rejected = await collect(client, subjects.system_event("sip.rejected"))
    target = ("127.0.0.1", settings.sip.port)
    with udp_probe() as (sock, local):
        garbage = [
            message for _, message, status in cases(f"127.0.0.1:{settings.sip.port}", local) if status == 400
        ]
        statuses = [await final_status(sock, target, message) for message in garbage[:4]]
        assert statuses == [400] * 4
        # the fifth refusal blocks the source: even a valid INVITE gets 403 now
        assert await final_status(sock, target, garbage[4]) == 400
        code, out = await sipp("not_allowed.xml", f"127.0.0.1:{settings.sip.port}")  # expects a 403
        assert code == 0, out
    # a few events, not one per message; the block ends after sip.block_s and calls are served
    await until(lambda: any(isinstance(e, SipRejected) for e in rejected), 5)
    assert len([e for e in rejected if isinstance(e, SipRejected)]) <= 5
    # the block's end is a time, not an event: probing it would count as refusals and renew it
    await asyncio.sleep(3.5)
    code, out = await sipp("caller_audio_dtmf.xml", f"127.0.0.1:{settings.sip.port}")
    assert code == 0, out


async def test_a_burst_of_invites_gets_503_and_the_call_in_progress_keeps_its_audio(
    settings: Settings, system: System, client: Bus
) -> None:
    """200 INVITEs in 2 s while a call is up: those beyond the new-call rate get 503 before pjsip
    allocates anything (pjlib's socket table once ran out and aborted the process); the rest reach
    pjsua and are refused there for their codec (488), after it allocated their RTP sockets."""
    await wait_all_serving(client)
    restarts = await collect(client, subjects.system_event("worker.restarted"))
    events = await collect(client, subjects.ALL_CALL_EVENTS)
    frames: list[AudioFrame] = []

    async def on_frame(frame: AudioFrame, _m: Msg) -> None:
        frames.append(frame)

    await client.subscribe("voxbus.call.*.audio.in", AudioFrame, on_frame)
    port = settings.sip.port
    call = asyncio.create_task(sipp("caller_audio_dtmf.xml", f"127.0.0.1:{port}"))
    await until(lambda: any(isinstance(e, CallStarted) for e in events), 15)
    loop = asyncio.get_running_loop()
    statuses: dict[str, int] = {}
    with udp_probe() as (sock, local):
        burst = [invite(f"127.0.0.1:{port}", local, f"burst{i}", codec="98 opus/48000/2") for i in range(200)]

        async def answers() -> None:
            while len(statuses) < len(burst):
                data = await loop.sock_recv(sock, 65535)
                status = int(data.split(b" ", 2)[1])
                call_id = next(line for line in data.decode().split("\r\n") if line.startswith("Call-ID"))
                if status >= 200:
                    statuses[call_id.split(": ", 1)[1]] = status
                    branch = call_id.split(": ", 1)[1].split("@")[0]
                    sent = burst[int(branch.removeprefix("burst"))]
                    await loop.sock_sendto(sock, ack_for(sent, data), ("127.0.0.1", port))

        reading = asyncio.create_task(answers())
        for message in burst:
            await loop.sock_sendto(sock, message, ("127.0.0.1", port))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reading, 15)
    code, out = await call
    assert code == 0, out
    counts = {status: list(statuses.values()).count(status) for status in set(statuses.values())}
    assert set(counts) <= {503, 488} and counts.get(503, 0) >= 150, counts
    assert [f.seq for f in frames] == list(range(len(frames))) and len(frames) > 150
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 10)
    assert [e.frames_in for e in events if isinstance(e, CallEnded)] == [len(frames)]
    assert not [e for e in restarts if isinstance(e, WorkerRestarted)]


@pytest.fixture
def one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXBUS_SIP__MAX_CALLS", "1")


async def test_beyond_its_capacity_a_gateway_answers_503_and_the_call_it_holds_goes_on(
    one_call: None, settings: Settings, system: System, client: Bus
) -> None:
    """Admission control: a gateway set to one call refuses the second with 503 and Retry-After
    (so that Kamailio tries another node) instead of slowing the call it holds."""
    await wait_all_serving(client)
    events = await collect(client, subjects.ALL_CALL_EVENTS)
    port = settings.sip.port
    first = asyncio.create_task(sipp("caller_audio_dtmf.xml", f"127.0.0.1:{port}"))
    await until(lambda: any(isinstance(e, CallStarted) for e in events), 15)
    with udp_probe() as (sock, local):
        second = invite(f"127.0.0.1:{port}", local, "second")
        assert await final_status(sock, ("127.0.0.1", port), second) == 503
    code, out = await first
    assert code == 0, out
    await until(lambda: any(isinstance(e, CallEnded) for e in events), 10)
    assert len([e for e in events if isinstance(e, CallStarted)]) == 1
