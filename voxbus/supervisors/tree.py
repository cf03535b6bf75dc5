"""OTP-style supervision for asyncio: children, restart strategies, intensity, backoff, escalation.

A child is anything with an async ``run()`` (an actor, a worker process watcher, another
supervisor). When a child ends, its restart type decides whether it comes back:

- ``permanent``: always restarted; ``transient``: restarted only after a crash;
  ``temporary``: never.

The strategy decides who restarts with it: ``one_for_one`` (just the child) or ``rest_for_one``
(the child and every child started after it, in order). More than ``max_restarts`` restarts within
``max_seconds`` means the trouble is not local: the supervisor stops all its children and raises
:class:`Escalation`, which its parent sees as this supervisor crashing. Restarts wait an exponential
backoff so that a child failing at start-up does not spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voxbus.logs import get_logger
from voxbus.supervisors.settings import SupervisionSettings

log = get_logger(__name__)

Strategy = Literal["one_for_one", "rest_for_one"]
RestartType = Literal["permanent", "transient", "temporary"]


class Runnable(Protocol):
    async def run(self) -> None: ...


class Escalation(RuntimeError):
    """A supervisor gave up: its restart intensity was exceeded."""


@dataclass
class ChildSpec:
    id: str
    start: Callable[[], Runnable]  # makes a fresh child for every (re)start
    restart: RestartType = "permanent"
    # faces the outside (a SIP gateway): anyone who reaches it may make it crash, so its restarts
    # back off but never count towards the supervisor's intensity (they cannot end the system)
    exposed: bool = False


@dataclass
class Backoff:
    initial_s: float = 0.2
    max_s: float = 5.0

    def delay(self, recent_restarts: int) -> float:
        if recent_restarts <= 1 or self.initial_s == 0:
            return 0.0 if recent_restarts <= 1 else self.initial_s
        return min(self.initial_s * 2 ** (recent_restarts - 2), self.max_s)


@dataclass
class RestartEvent:
    supervisor: str
    child: str
    reason: str
    restarts: int


@dataclass
class _Running:
    spec: ChildSpec
    task: asyncio.Task[None]
    restarts: int = 0


@dataclass
class Supervisor:
    name: str
    strategy: Strategy = "one_for_one"
    max_restarts: int = 5
    max_seconds: float = 60.0
    backoff: Backoff = field(default_factory=Backoff)
    on_restart: Callable[[RestartEvent], None] | None = None
    on_escalate: Callable[[str], None] | None = None

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: SupervisionSettings,
        on_restart: Callable[[RestartEvent], None] | None = None,
        on_escalate: Callable[[str], None] | None = None,
        strategy: Strategy = "one_for_one",
    ) -> Supervisor:
        """A supervisor with the configured restart intensity and backoff."""
        return cls(
            name=name,
            strategy=strategy,
            max_restarts=settings.max_restarts,
            max_seconds=settings.max_seconds,
            backoff=Backoff(settings.backoff_initial_s, settings.backoff_max_s),
            on_restart=on_restart,
            on_escalate=on_escalate,
        )

    def __post_init__(self) -> None:
        self._order: list[str] = []
        self._children: dict[str, _Running] = {}
        self._restart_times: deque[float] = deque()
        self._exposed_times: dict[str, deque[float]] = {}  # restarts of exposed children, each apart
        self._changed = asyncio.Event()
        self._stopping = False

    # --- children -----------------------------------------------------------------------------
    def start_child(self, spec: ChildSpec) -> None:
        if spec.id in self._children:
            raise ValueError(f"{self.name}: child {spec.id} already running")
        self._order.append(spec.id)
        self._launch(spec)

    async def terminate_child(self, child_id: str) -> None:
        running = self._children.pop(child_id, None)
        if child_id in self._order:
            self._order.remove(child_id)
        if running:
            await _cancel(running.task)
        self._changed.set()

    def children(self) -> list[str]:
        return list(self._order)

    def _launch(self, spec: ChildSpec, restarts: int = 0) -> None:
        task = asyncio.create_task(spec.start().run(), name=f"{self.name}/{spec.id}")
        task.add_done_callback(lambda _t: self._changed.set())
        self._children[spec.id] = _Running(spec, task, restarts)

    # --- the supervision loop -----------------------------------------------------------------
    async def run(self) -> None:
        """Watch the children until stopped; raises Escalation when intensity is exceeded."""
        try:
            while not self._stopping:
                self._changed.clear()
                for child_id in list(self._order):
                    running = self._children.get(child_id)
                    if running and running.task.done():
                        await self._child_ended(running)
                await self._changed.wait()
        finally:
            await self._stop_all()

    async def stop(self) -> None:
        self._stopping = True
        self._changed.set()
        await self._stop_all()

    async def _child_ended(self, running: _Running) -> None:
        spec, task = running.spec, running.task
        crashed = task.cancelled() or task.exception() is not None
        reason = _reason(task)
        if spec.restart == "temporary" or (spec.restart == "transient" and not crashed):
            log.info("child ended", supervisor=self.name, child=spec.id, reason=reason)
            self._order.remove(spec.id)
            del self._children[spec.id]
            return
        now = time.monotonic()
        times = self._exposed_times.setdefault(spec.id, deque()) if spec.exposed else self._restart_times
        times.append(now)
        while times and now - times[0] > self.max_seconds:
            times.popleft()
        if not spec.exposed and len(times) > self.max_restarts:
            message = (
                f"{self.name}: {len(self._restart_times)} restarts in "
                f"{self.max_seconds:.0f} s (limit {self.max_restarts}); "
                f"last: {spec.id} {reason}"
            )
            log.error("restart intensity exceeded, escalating", supervisor=self.name, detail=message)
            if self.on_escalate:
                self.on_escalate(message)
            raise Escalation(message)
        to_restart = [spec.id]
        if self.strategy == "rest_for_one":
            to_restart = self._order[self._order.index(spec.id) :]
            for later in to_restart[1:]:
                await _cancel(self._children[later].task)
        delay = self.backoff.delay(len(times))
        log.warning(
            "restarting child",
            supervisor=self.name,
            child=spec.id,
            reason=reason,
            restarts=running.restarts + 1,
            delay_s=round(delay, 3),
            with_=to_restart[1:],
        )
        if delay:
            await asyncio.sleep(delay)
        for child_id in to_restart:
            prior = self._children[child_id]
            self._launch(prior.spec, prior.restarts + 1)
            if self.on_restart:
                self.on_restart(RestartEvent(self.name, child_id, reason, prior.restarts + 1))

    async def _stop_all(self) -> None:
        for child_id in reversed(self._order):
            running = self._children.get(child_id)
            if running:
                await _cancel(running.task)


def _reason(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return "exited"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


async def _cancel(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):  # a stopped child's last words do not matter here
        await task
