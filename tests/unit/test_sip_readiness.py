"""The gateway's readiness for calls: which roles it still waits for (a recording bus in place of
NATS; the whole path, heartbeats to a refused INVITE, in tests/integration/test_sip_readiness.py)."""

from __future__ import annotations

from typing import Any

from voxbus.schemas.messages import Heartbeat
from voxbus.sip.readiness import WorkerReadiness


class RecordingBus:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    async def subscribe(self, subject: str, _model: Any, handler: Any, queue: str = "") -> Any:
        self.handlers[subject] = handler
        return self

    async def unsubscribe(self) -> None:
        pass


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def beat(role: str) -> Heartbeat:
    return Heartbeat(role=role, worker_id=f"{role}-1", pid=1)


async def test_calls_wait_until_every_role_has_been_heard_and_again_when_one_falls_silent() -> None:
    bus, clock = RecordingBus(), Clock()
    ready = WorkerReadiness(bus, "sip-1", ("stt", "llm", "tts", "agent"), stale_s=10.0, clock=clock)  # type: ignore[arg-type]
    await ready.start()
    try:
        assert sorted(bus.handlers) == sorted(
            f"voxbus.sys.health.{r}.*" for r in ("stt", "llm", "tts", "agent")
        )
        assert ready.missing() == ("stt", "llm", "tts", "agent")
        for role in ("stt", "tts", "agent"):
            await bus.handlers[f"voxbus.sys.health.{role}.*"](beat(role), None)
        assert ready.missing() == ("llm",)  # still loading its model
        await bus.handlers["voxbus.sys.health.llm.*"](beat("llm"), None)
        assert ready.missing() == ()
        clock.now += 9.0
        for role in ("stt", "tts", "agent"):
            ready.beat(role)
        clock.now += 2.0  # the LLM worker silent for 11 s: gone
        assert ready.missing() == ("llm",)
        ready.beat("llm")  # a restarted one serves
        assert ready.missing() == ()
    finally:
        await ready.stop()


async def test_a_gateway_told_to_wait_for_nothing_admits_at_once() -> None:
    bus = RecordingBus()
    ready = WorkerReadiness(bus, "sip-1", (), stale_s=10.0)  # type: ignore[arg-type]
    await ready.start()
    assert ready.missing() == () and bus.handlers == {}
    await ready.stop()


def test_beats_of_roles_not_waited_for_change_nothing() -> None:
    ready = WorkerReadiness(RecordingBus(), "sip-1", ("llm",), stale_s=10.0)  # type: ignore[arg-type]
    ready.beat("console")
    assert ready.missing() == ("llm",)
