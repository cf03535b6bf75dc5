"""Call control that must not be lost (a hang-up, a transfer), on a real NATS server: a request
that its receiver acknowledges, retried under one ``Nats-Msg-Id`` until it is, and carried out
once however many times it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg

from voxbus.actors.call.outbound import CONTROL_ACK_S, Outbound
from voxbus.bus import subjects
from voxbus.bus.codec import decode, encode
from voxbus.bus.connection import Bus, acknowledge
from voxbus.bus.streams import ensure_events_stream
from voxbus.clock import SystemClock
from voxbus.config import AgentSettings
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import ErrorEvent, Event
from voxbus.schemas.messages import CallControl

from .helpers import until

pytestmark = pytest.mark.integration
HANGUP = CallControl(call_id="c1", action="hangup")


@pytest.fixture
async def buses(nats_url: str) -> AsyncIterator[tuple[Bus, Bus]]:
    sender, receiver = Bus(nats_url, "sender", source="agent/a1"), Bus(nats_url, "receiver", source="sip/s1")
    for bus in (sender, receiver):
        await bus.connect(attempts=3)
    yield sender, receiver
    for bus in (sender, receiver):
        await bus.close()


async def test_a_command_whose_acknowledgement_is_lost_is_retried_and_carried_out_once(
    buses: tuple[Bus, Bus],
) -> None:
    sender, receiver = buses
    carried_out: list[CallControl] = []

    async def on_ctl(command: CallControl, msg: Msg) -> None:
        carried_out.append(command)
        if len(carried_out) > 1:  # the first acknowledgement "lost": the receiver says nothing
            await acknowledge(msg, "sip/s1", "sip")

    await receiver.subscribe(subjects.control("c1"), CallControl, on_ctl)
    assert await sender.command(subjects.control("c1"), HANGUP, within_s=5.0, per_try_s=0.3)
    assert carried_out == [HANGUP]  # the retry was acknowledged, not carried out again

    # a second command is a new one (its own id): carried out, and acknowledged by the receiver
    assert await sender.command(subjects.control("c1"), HANGUP, within_s=5.0, per_try_s=0.3)
    assert len(carried_out) == 2


async def test_the_same_command_twice_is_carried_out_once_and_answered_twice(buses: tuple[Bus, Bus]) -> None:
    sender, receiver = buses
    carried_out: list[CallControl] = []

    async def on_ctl(command: CallControl, msg: Msg) -> None:
        carried_out.append(command)
        await acknowledge(msg, "sip/s1", "sip")

    await receiver.subscribe(subjects.control("c1"), CallControl, on_ctl)
    once = {"Nats-Msg-Id": "hangup-1"}
    for _ in range(2):
        # asked again while the server says nobody listens, as Bus.command does
        reply = await sender.request(subjects.control("c1"), HANGUP, Accepted, 2.0, once, heard_within_s=2)
        assert isinstance(reply, Accepted)
    assert carried_out == [HANGUP]


async def test_a_hangup_nobody_acknowledges_is_an_error_event_not_a_silent_loss(
    buses: tuple[Bus, Bus],
) -> None:
    sender, watcher = buses
    assert sender.js is not None
    await ensure_events_stream(sender.js)
    events: list[Event] = []

    async def on_event(event: Event, _msg: Msg) -> None:
        events.append(event)

    await watcher.subscribe(subjects.call_events("c1"), None, on_event)
    # a gateway that took the call's control subject and died: it reads, and never answers
    await watcher.nc.subscribe(subjects.control("c1"), cb=_read_and_never_answer)
    out = Outbound(sender, SystemClock(), "c1", AgentSettings())
    assert not await out.control("hangup")
    await until(lambda: any(isinstance(e, ErrorEvent) for e in events), CONTROL_ACK_S + 10)
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.code == "control_unacknowledged" and "hangup" in error.message
    # hold, resume and flush are fire-and-forget: they never wait for an answer
    assert await out.control("flush", gen=1)


async def _read_and_never_answer(_msg: Msg) -> None:
    return None


async def test_a_retried_event_is_dropped_without_an_answer_a_retried_command_is_acknowledged(
    buses: tuple[Bus, Bus],
) -> None:
    # An event is a JetStream publish: its reply inbox waits for the stream's JSON acknowledgement.
    # A subscriber that answered a retried event there (with msgpack) failed the publish, and under
    # a cluster's leader election every retry of every event of a call failed so, for seconds.
    sender, receiver = buses
    handled: list[str] = []

    async def note(_message: object, msg: Msg) -> None:
        handled.append(msg.subject)
        if msg.subject == subjects.control("c1"):
            await acknowledge(msg, "sip/s1", "gateway")  # as a gateway does once it has carried it out

    await receiver.subscribe("voxbus.call.c1.>", None, note)
    event_subject, event = subjects.call_event("c1", "error"), ErrorEvent(call_id="c1", code="x", message="y")
    control = subjects.control("c1")
    # a command (its body an event, which this subscription decodes), asked until the server knows
    # the subscription: even after the subscriber's flush, a request right after it on another
    # connection is sometimes answered "no responders" (nobody got it: asking again is safe)
    command = {"Nats-Msg-Id": "command-1"}
    first = await sender.request(control, event, Accepted, timeout_s=10, headers=command, heard_within_s=30)
    assert first.worker_id == "sip/s1"
    inbox = sender.nc.new_inbox()
    answers = await sender.nc.subscribe(inbox)
    once = {"Nats-Msg-Id": "event-1"}
    for _ in range(2):  # the first publish, then its retry
        await sender.nc.publish(event_subject, encode(event), reply=inbox, headers=once)
    # then the command again (its acknowledgement lost, say), handled in order after the event's retry
    reply = await sender.nc.request(control, encode(event), timeout=10, headers=command)
    assert decode(reply.subject, reply.data, Accepted).worker_id == "sip/s1"  # the retry acknowledged
    assert handled == [control, event_subject]  # each once
    assert answers.pending_msgs == 0  # nothing answered the event's retry
