"""Supervision trees: strategies, restart types, intensity and escalation, backoff."""

from __future__ import annotations

import asyncio

import pytest

from voxbus.supervisors.tree import Backoff, ChildSpec, Escalation, RestartEvent, Supervisor


class Child:
    """A controllable child: records its starts, crashes or exits on command."""

    def __init__(self, log: list[str], name: str, commands: dict[str, asyncio.Queue[str]]) -> None:
        self.log, self.name = log, name
        self.commands = commands.setdefault(name, asyncio.Queue())

    async def run(self) -> None:
        self.log.append(f"start {self.name}")
        command = await self.commands.get()
        if command == "crash":
            raise RuntimeError(f"{self.name} crashed")


def specs(
    names: list[str], log: list[str], commands: dict[str, asyncio.Queue[str]], restart: str = "permanent"
) -> list[ChildSpec]:
    return [
        ChildSpec(id=n, start=lambda n=n: Child(log, n, commands), restart=restart)  # type: ignore[misc]
        for n in names
    ]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def no_backoff() -> Backoff:
    return Backoff(initial_s=0, max_s=0)


async def run_sup(sup: Supervisor, children: list[ChildSpec]) -> asyncio.Task[None]:
    for spec in children:
        sup.start_child(spec)
    task = asyncio.create_task(sup.run())
    await settle()
    return task


async def test_one_for_one_restarts_only_the_crashed_child() -> None:
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    restarts: list[RestartEvent] = []
    sup = Supervisor("s", "one_for_one", backoff=no_backoff(), on_restart=restarts.append)
    task = await run_sup(sup, specs(["a", "b", "c"], log, commands))
    commands["b"].put_nowait("crash")
    await settle()
    assert log == ["start a", "start b", "start c", "start b"]
    assert [(r.child, r.restarts) for r in restarts] == [("b", 1)]
    assert "RuntimeError: b crashed" in restarts[0].reason
    await sup.stop()
    await task


async def test_rest_for_one_restarts_the_child_and_those_started_after_it() -> None:
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    sup = Supervisor("s", "rest_for_one", backoff=no_backoff())
    task = await run_sup(sup, specs(["a", "b", "c"], log, commands))
    commands["b"].put_nowait("crash")
    await settle()
    assert log == ["start a", "start b", "start c", "start b", "start c"]
    await sup.stop()
    await task


async def test_transient_and_temporary_children() -> None:
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    sup = Supervisor("s", backoff=no_backoff())
    task = await run_sup(
        sup, specs(["t"], log, commands, "transient") + specs(["x"], log, commands, "temporary")
    )
    commands["t"].put_nowait("exit")  # a normal exit: not restarted
    commands["x"].put_nowait("crash")  # temporary: never restarted
    await settle()
    assert log == ["start t", "start x"] and sup.children() == []
    sup.start_child(specs(["t2"], log, commands, "transient")[0])
    await settle()
    commands["t2"].put_nowait("crash")  # a crash: restarted
    await settle()
    assert log[-2:] == ["start t2", "start t2"]
    await sup.stop()
    await task


async def test_intensity_exceeded_escalates_and_the_parent_restarts_the_subtree() -> None:
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    escalations: list[str] = []
    made: list[Supervisor] = []

    def make_child_sup() -> Supervisor:
        sup = Supervisor(
            "inner", max_restarts=2, max_seconds=60, backoff=no_backoff(), on_escalate=escalations.append
        )
        sup.start_child(specs(["w"], log, commands)[0])
        made.append(sup)
        return sup

    parent_restarts: list[RestartEvent] = []
    parent = Supervisor("outer", backoff=no_backoff(), on_restart=parent_restarts.append)
    task = await run_sup(parent, [ChildSpec("inner", make_child_sup)])
    for _ in range(3):  # the third crash within the window exceeds max_restarts=2
        commands["w"].put_nowait("crash")
        await settle()
    assert len(escalations) == 1 and "3 restarts" in escalations[0]
    assert [r.child for r in parent_restarts] == ["inner"]
    assert "Escalation" in parent_restarts[0].reason
    assert len(made) == 2 and log[-1] == "start w"  # a fresh inner supervisor, a fresh worker
    await parent.stop()
    await task


async def test_escalation_is_raised_from_run() -> None:
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    sup = Supervisor("s", max_restarts=0, backoff=no_backoff())
    task = await run_sup(sup, specs(["a"], log, commands))
    commands["a"].put_nowait("crash")
    with pytest.raises(Escalation):
        await asyncio.wait_for(task, 2)


def test_backoff_grows_exponentially_to_its_cap() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0]


async def test_backoff_delays_a_repeated_restart() -> None:
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    sup = Supervisor("s", backoff=Backoff(initial_s=0.3, max_s=1.0))
    task = await run_sup(sup, specs(["a"], log, commands))
    commands["a"].put_nowait("crash")
    await settle()
    assert log.count("start a") == 2  # first restart: immediate
    loop = asyncio.get_running_loop()
    began = loop.time()
    commands["a"].put_nowait("crash")
    while log.count("start a") < 3:
        await asyncio.sleep(0.01)
    assert loop.time() - began >= 0.29  # second restart within the window waits
    await sup.stop()
    await task


async def test_a_child_facing_the_outside_never_exhausts_the_intensity_of_the_others() -> None:
    """A gateway's crashes can be caused by anyone who reaches its SIP port: they back off but do
    not count towards the restart intensity, so they cannot take the whole system down."""
    log: list[str] = []
    commands: dict[str, asyncio.Queue[str]] = {}
    sup = Supervisor("s", max_restarts=2, backoff=no_backoff())
    door = ChildSpec(id="sip", start=lambda: Child(log, "sip", commands), exposed=True)
    task = await run_sup(sup, [door, *specs(["stt"], log, commands)])
    for _ in range(6):
        commands["sip"].put_nowait("crash")
        await settle()
    assert log.count("start sip") == 7 and not task.done()
    for _ in range(3):  # the others' intensity is still whole: the third crash escalates
        commands["stt"].put_nowait("crash")
        await settle()
    with pytest.raises(Escalation):
        await asyncio.wait_for(task, 2)
