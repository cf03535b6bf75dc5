"""MachineLoad: the calls of a machine's other gateways, as they last said (a recording bus in
place of NATS; the bus itself is exercised in tests/integration/test_sip_machine_capacity.py)."""

from __future__ import annotations

from typing import Any

from voxbus.schemas.messages import GatewayLoad
from voxbus.sip.machine_load import STALE_S, MachineLoad


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []
        self.handlers: dict[str, Any] = {}

    async def publish(self, subject: str, message: Any) -> None:
        self.published.append((subject, message))

    async def subscribe(self, subject: str, _model: Any, handler: Any, queue: str = "") -> None:
        self.handlers[subject] = handler


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def machine(own: int = 0) -> tuple[MachineLoad, RecordingBus, Clock]:
    bus, clock = RecordingBus(), Clock()
    return MachineLoad(bus, "sip-1", "box", lambda: own, clock), bus, clock  # type: ignore[arg-type]


async def hear(load: MachineLoad, message: GatewayLoad) -> None:
    await load._on_load(message, None)  # type: ignore[arg-type]


async def test_the_machine_counts_every_gateway_but_itself_once() -> None:
    load, bus, _ = machine()
    await hear(load, GatewayLoad(gateway="sip-2", calls=2))
    await hear(load, GatewayLoad(gateway="sip-3", calls=1))
    await hear(load, GatewayLoad(gateway="sip-2", calls=3))  # a newer count replaces the older
    await hear(load, GatewayLoad(gateway="sip-1", calls=4))  # its own, echoed by the bus
    assert load.machine_calls(own=1) == 1 + 3 + 1
    assert bus.published == []  # nobody asked


async def test_a_starting_gateway_asks_and_the_others_answer_at_once() -> None:
    load, bus, _ = machine(own=2)
    await hear(load, GatewayLoad(gateway="sip-9", calls=0, ask=True))
    assert bus.published == [("voxbus.sip.load.box", GatewayLoad(gateway="sip-1", calls=2, answers="sip-9"))]


async def test_a_gateway_silent_for_three_heartbeats_or_leaving_is_forgotten() -> None:
    load, _, clock = machine()
    await hear(load, GatewayLoad(gateway="sip-2", calls=2))
    await hear(load, GatewayLoad(gateway="sip-3", calls=1))
    clock.now += STALE_S / 2
    await hear(load, GatewayLoad(gateway="sip-3", calls=1))
    clock.now += STALE_S / 2 + 0.01
    assert load.machine_calls(own=0) == 1  # sip-2 went silent (killed, or the bus is gone)
    await hear(load, GatewayLoad(gateway="sip-3", calls=0, leaving=True))
    assert load.machine_calls(own=0) == 0
