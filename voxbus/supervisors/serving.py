"""Waiting until workers serve: each one's first heartbeat comes once its model is loaded."""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.schemas.messages import Heartbeat

ROLES = ("sip", "stt", "llm", "tts", "agent")


async def pid_of(
    bus: Bus, role: str, worker_id: str, timeout_s: float = 30.0, admitting: bool = False
) -> int:
    """The process id of a worker once it serves (its first heartbeat comes after its model
    loaded); ``admitting``: a gateway's once it also admits calls (``voxbus.sip.readiness``)."""
    found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_beat(beat: Heartbeat, _msg: Msg) -> None:
        if not found.done() and not (admitting and beat.admitting is False):
            found.set_result(beat.pid)

    sub = await bus.subscribe(subjects.health(role, worker_id), Heartbeat, on_beat)
    try:
        return await asyncio.wait_for(found, timeout_s)
    finally:
        await sub.unsubscribe()


async def wait_all_serving(bus: Bus, roles: tuple[str, ...] = ROLES, timeout_s: float = 30.0) -> None:
    """Every role has loaded its model and serves, and the gateway admits calls (it refuses
    them with 503 until it has heard every role a call needs)."""
    await asyncio.gather(
        *(pid_of(bus, role, f"{role}-1", timeout_s, admitting=role == "sip") for role in roles)
    )
