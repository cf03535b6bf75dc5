"""How many calls the gateways of one machine hold: admission control across shards.

The pjsua2 wheel holds at most 4 calls per process, so a machine serves more through several
gateway shards; but what a machine can carry at the latency target (README, "Capacity") is a number
of calls for the whole machine, not per shard. Each gateway publishes its call count on
``voxbus.sip.load.<machine>`` whenever it changes and every ``HEARTBEAT_S``, and keeps the latest
count of every other gateway of its machine; the SIP front refuses an INVITE with 503 and
Retry-After once the machine's sum reaches ``sip.machine_max_calls`` (Kamailio then tries another
node).

Why counts on the bus rather than a JetStream counter: the front decides on the pjsua thread before
pjsip allocates anything for a request, and must not wait for the bus. The price: two INVITEs that
reach two shards within the same few milliseconds may both pass (one call over the limit, for that
call's length). A gateway forgets a count not refreshed within ``STALE_S`` (a shard killed, the bus
gone): it then falls back to what it knows, its own calls and ``sip.max_calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.logs import get_logger
from voxbus.schemas.messages import GatewayLoad

log = get_logger(__name__)

HEARTBEAT_S = 1.0
STALE_S = 3.5  # three heartbeats missed


class MachineLoad:
    """The calls of this machine's other gateways, as they last said. Updated on the event loop;
    read on the pjsua thread (:meth:`machine_calls`), through a mapping replaced, never changed."""

    def __init__(
        self,
        bus: Bus,
        gateway_id: str,
        machine: str,
        own_calls: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus, self.gateway_id, self.machine = bus, gateway_id, machine
        self.own_calls, self.clock = own_calls, clock
        self.subject = subjects.sip_load(machine)
        self._others: dict[str, tuple[int, float]] = {}  # gateway -> (calls, when heard, monotonic)
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.subscribe(self.subject, GatewayLoad, self._on_load)
        await self.publish(ask=True)  # the others answer at once: no heartbeat's wait to know them
        self._beat = asyncio.create_task(self._heartbeat(), name=f"load-{self.gateway_id}")

    async def stop(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        with contextlib.suppress(Exception):  # best effort: the others forget it after STALE_S anyway
            await self.bus.publish(self.subject, GatewayLoad(gateway=self.gateway_id, calls=0, leaving=True))

    def machine_calls(self, own: int) -> int:
        """This gateway's ``own`` calls plus the fresh counts of the machine's other gateways."""
        oldest = self.clock() - STALE_S
        return own + sum(calls for calls, heard in self._others.values() if heard >= oldest)

    async def publish(self, ask: bool = False, answers: str = "") -> None:
        """Say this gateway's count now (``ask``: and ask the others to say theirs; ``answers``:
        the gateway that asked)."""
        load = GatewayLoad(gateway=self.gateway_id, calls=self.own_calls(), ask=ask, answers=answers)
        try:
            await self.bus.publish(self.subject, load)
        except Exception as exc:  # the bus reconnecting: the next heartbeat says it again
            log.info("machine load not published", reason=str(exc)[:200])

    async def _on_load(self, load: GatewayLoad, _msg: Msg) -> None:
        if load.gateway == self.gateway_id:
            return
        others = dict(self._others)
        if load.leaving:
            others.pop(load.gateway, None)
        else:
            others[load.gateway] = (load.calls, self.clock())
        oldest = self.clock() - STALE_S
        self._others = {gateway: seen for gateway, seen in others.items() if seen[1] >= oldest}
        if load.ask:
            await self.publish(answers=load.gateway)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self.publish()
