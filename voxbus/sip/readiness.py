"""Whether the workers a call needs are serving: a gateway admits calls only then.

A call placed while the system starts is answered but greeted late (the TTS worker still loading),
and its first turn waits seconds for the LLM worker to evaluate the agent's prompt; a call placed
while no STT worker runs has an agent that never hears. A gateway that knows it answers such an
INVITE (and an OPTIONS probe) ``503`` with ``Retry-After``, so that a SIP front (Kamailio,
``deploy/kamailio``) takes the node out of its pool and tries another, and a caller's phone
retries, instead of a call that goes wrong.

"Serving" is the workers' own heartbeat (``voxbus.sys.health.<role>.<id>``): the first comes once
the worker's model is loaded. A role is missing when no worker of it has beaten within
``sip.roles_stale_s``. The front reads the verdict on the pjsua thread without waiting for the
bus: the map of last beats is replaced, never changed in place. Which roles a gateway waits for is
``sip.wait_for_roles``; ``voxbus up`` fills it with the roles it runs itself
(``voxbus.supervisors.system``), and a gateway started alone waits for none unless told.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.logs import get_logger
from voxbus.schemas.messages import Heartbeat

log = get_logger(__name__)

CHECK_S = 0.5  # how often a role's silence is looked for between beats


class WorkerReadiness:
    """The roles among ``roles`` with no worker heard from within ``stale_s``."""

    def __init__(
        self,
        bus: Bus,
        gateway_id: str,
        roles: Sequence[str],
        stale_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus, self.gateway_id, self.roles = bus, gateway_id, tuple(roles)
        self.stale_s, self.clock = stale_s, clock
        self._heard: dict[str, float] = {}  # role -> last beat of any of its workers (monotonic)
        self._said: tuple[str, ...] | None = None  # the missing roles last logged
        self._subs: list[Subscription] = []
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.roles:
            return
        for role in self.roles:
            self._subs.append(await self.bus.subscribe(subjects.health(role, "*"), Heartbeat, self._on_beat))
        self._watch = asyncio.create_task(self._watch_silence(), name=f"readiness-{self.gateway_id}")
        self._changed()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def missing(self) -> tuple[str, ...]:
        """The roles no worker of which has beaten within ``stale_s`` (any thread)."""
        oldest, heard = self.clock() - self.stale_s, self._heard
        return tuple(role for role in self.roles if heard.get(role, float("-inf")) < oldest)

    def beat(self, role: str) -> None:
        """A worker of ``role`` is serving now."""
        if role in self.roles:
            self._heard = {**self._heard, role: self.clock()}
            if self._said:
                self._changed()

    async def _on_beat(self, beat: Heartbeat, _msg: Msg) -> None:
        self.beat(beat.role)

    async def _watch_silence(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            self._changed()

    def _changed(self) -> None:
        """One log line each time the verdict changes."""
        missing = self.missing()
        if missing == self._said:
            return
        first = self._said is None
        self._said = missing
        if not missing:
            log.info("admitting calls: every role a call needs is serving", gateway=self.gateway_id)
        elif first:
            log.info("refusing calls (503) until these roles serve", gateway=self.gateway_id, roles=missing)
        else:
            log.warning(
                "refusing calls (503): no worker of these roles heard from",
                gateway=self.gateway_id,
                roles=missing,
                within_s=self.stale_s,
            )
