"""Shared fixtures: the test model profile, a real nats-server per test, the whole system."""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from voxbus.bus.embedded import LISTEN_PORTS, LISTEN_PORTS_ENV, EmbeddedNats, free_port
from voxbus.config import Settings, load_settings

DEFAULT_MODELS = (
    Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "voxbus" / "models"
)


# past pytest-timeout's limit: a test stuck where Python's signal handlers never run (a loop in
# native code holding the GIL) is ended by faulthandler's own thread, which needs no GIL
WATCHDOG_GRACE_S = 60.0
_terminal = -1  # a copy of stderr that outlives pytest's capture


def pytest_configure(config: pytest.Config) -> None:
    """A segmentation fault in native code (llama.cpp, ctranslate2, onnxruntime, pjsip) prints the
    Python stack of the thread that crashed, alone: pytest's own handler (turned off in pyproject)
    prints every thread, which buries the one that matters when a run's log is cut short. Set here,
    where stderr is not captured yet, on a copy of it that outlives the capture."""
    global _terminal
    _terminal = os.dup(sys.stderr.fileno())
    faulthandler.enable(file=_terminal, all_threads=False)
    _own_ports_per_worker()


def _own_ports_per_worker() -> None:
    """Under pytest-xdist each worker picks listening ports from its own slice (inherited by the
    processes its tests start): a port picked by one worker, free until its server binds it, is
    never picked by the other in between."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or LISTEN_PORTS_ENV in os.environ:
        return
    index, low = int(worker.removeprefix("gw")), LISTEN_PORTS[0]
    size = (LISTEN_PORTS[1] - low + 1) // int(count)
    os.environ[LISTEN_PORTS_ENV] = f"{low + index * size}-{low + (index + 1) * size - 1}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """pytest-timeout interrupts a test through a signal, which Python handles only between
    bytecodes; a test stuck inside native code would hang the run until CI's limit. This watchdog
    prints every thread's stack and ends the run, failed, a minute after the test's limit."""
    faulthandler.dump_traceback_later(time_limit(item) + WATCHDOG_GRACE_S, exit=True, file=_terminal)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


def time_limit(item: pytest.Item) -> float:
    """The test's pytest-timeout limit: its ``timeout`` mark, else the configured one."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and (value := marker.args[0] if marker.args else marker.kwargs.get("timeout")):
        return float(value)
    return float(item.config.getini("timeout") or 300)


@pytest.fixture
def test_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment of the test profile, with a private data dir and the shared model dir."""
    env = {
        "VOXBUS_PROFILE": "test",
        "VOXBUS_DATA_DIR": str(tmp_path / "data"),
        "VOXBUS_MODEL_DIR": os.environ.get("VOXBUS_MODEL_DIR", str(DEFAULT_MODELS)),
        "OMP_WAIT_POLICY": "PASSIVE",
        "VOXBUS_SIP__PORT": str(free_port()),
        "VOXBUS_CONSOLE__ENABLED": "false",  # the console tests turn it on
        "VOXBUS_CONSOLE__PORT": "0",
        "VOXBUS_SIP__RTP_PORT": str(30000 + free_port() % 15000 // 2 * 2),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VOXBUS_NATS_URL", raising=False)
    monkeypatch.delenv("VOXBUS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    yield env


@pytest.fixture
def settings(test_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
async def nats_url(tmp_path: Path) -> AsyncIterator[str]:
    server = EmbeddedNats(tmp_path / "nats")
    url = await server.start()
    yield url
    await server.stop()
