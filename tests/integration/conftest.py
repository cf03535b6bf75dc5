"""Integration fixtures: the real system (worker processes, real models) and scripted callers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

# the helpers' checks tell what they found when they fail (a bare AssertionError told nothing)
pytest.register_assert_rewrite("tests.integration.helpers")

from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.config import LlmSettings, Settings  # noqa: E402
from voxbus.engines.llm import LlamaEngine  # noqa: E402
from voxbus.engines.models import model_path  # noqa: E402
from voxbus.engines.tts import PiperEngine  # noqa: E402
from voxbus.media.script import CallerScript, SpokenLine, render  # noqa: E402
from voxbus.schemas.events import ErrorEvent  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402

LEFT_TASKS_CANCEL_S = 10.0


@pytest.fixture(autouse=True)
async def no_task_survives_the_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Torn down after the test's own fixtures: the tasks they left are cancelled here, as the
    event loop's runner would do next, but with a bound. A task that ignores its cancellation
    would hang the runner, and the whole suite with it, where no per-test timeout reaches (one
    did in a stressed run): its stack is told and the run ends at once, failed."""
    before = asyncio.all_tasks()
    yield
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    for task in left:
        task.cancel()
    if not left:
        return
    _, stuck = await asyncio.wait(left, timeout=LEFT_TASKS_CANCEL_S)
    if stuck:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():  # told on the terminal, not into a capture
            told = f"{len(stuck)} task(s) ignored their cancellation for {LEFT_TASKS_CANCEL_S:g} s"
            print(f"\n{request.node.nodeid}: {told}:", file=sys.stderr)
            for task in stuck:
                task.print_stack(file=sys.stderr)
            sys.stderr.flush()
        os._exit(3)  # the runner would wait for them for ever


@pytest.fixture(scope="session")
def piper() -> PiperEngine:
    from voxbus.config import load_settings

    settings = load_settings(profile="test")
    return PiperEngine(model_path(settings, "tts"), settings.tts)


@pytest.fixture
def open_llm(settings: Settings) -> Iterator[Callable[[LlmSettings | None], LlamaEngine]]:
    """Load the test LLM in this process; every engine is closed when the test ends, so that no
    llama.cpp context is left for the garbage collector to free at a random moment later."""
    engines: list[LlamaEngine] = []

    def make(llm: LlmSettings | None = None) -> LlamaEngine:
        engines.append(LlamaEngine(model_path(settings, "llm"), llm or settings.llm))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def caller(tmp_path: Path, piper: PiperEngine):  # type: ignore[no-untyped-def]
    """Render a script to a WAV: returns (path, spoken lines)."""

    def make(script: CallerScript, name: str = "caller.wav") -> tuple[Path, list[SpokenLine]]:
        path = tmp_path / name
        return path, render(script, piper, path)

    return make


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[System]:
    running = System(settings)
    await running.start()
    yield running
    problems = await permission_problems(running)
    await running.stop()
    assert not problems, f"a worker was refused by the bus: {problems}"


async def permission_problems(system: System) -> list[str]:
    """What the bus refused the system's own processes (their credentials lack a permission)."""
    from voxbus.bus import subjects
    from voxbus.bus.codec import BadMessage, decode_event

    if system.bus is None or system.bus.js is None:
        return []
    await system.bus.flush_events()
    info = await system.bus.js.stream_info(subjects.EVENTS_STREAM)
    problems = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await system.bus.js.get_msg(subjects.EVENTS_STREAM, seq)
        try:
            event = decode_event(msg.subject, msg.data)
        except BadMessage:
            continue  # garbage a test published on purpose
        if isinstance(event, ErrorEvent) and event.code == "bus_permission" and "/" in event.source:
            problems.append(event.message)
    return problems


@pytest.fixture
async def client(system: System) -> AsyncIterator[Bus]:
    bus = Bus(system.url, name="test-client", source="test", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    yield bus
    await bus.close()
