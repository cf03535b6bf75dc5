"""Asking a call's actor to carry out an operator's command (shared by the web and terminal
consoles): a request on ``voxbus.call.<id>.op``, answered at once."""

from __future__ import annotations

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode, encode
from voxbus.bus.connection import Bus
from voxbus.schemas.base import Accepted, Rejected
from voxbus.schemas.messages import OperatorCommand


async def ask_call_actor(bus: Bus, command: OperatorCommand, timeout_s: float = 3.0) -> str | None:
    """None when the actor did it; else why not, in one line."""
    try:
        msg = await bus.nc.request(subjects.operator(command.call_id), encode(command), timeout=timeout_s)
    except NoRespondersError:
        return "no call actor answers for this call (it has ended)"
    except NatsTimeout:
        return "the call actor did not answer in time"
    try:
        decode(msg.subject or "", msg.data, Accepted)
        return None
    except BadMessage:
        try:
            return decode(msg.subject or "", msg.data, Rejected).reason
        except BadMessage as exc:
            return f"unreadable answer from the call actor: {exc.reason}"
