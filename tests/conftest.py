"""Shared fixtures: the test model profile, a real nats-server per test, the whole system."""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from voxbus.bus.embedded import EmbeddedNats, free_port
from voxbus.config import Settings, load_settings

DEFAULT_MODELS = (
    Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "voxbus" / "models"
)


def pytest_configure(config: pytest.Config) -> None:
    """A segmentation fault in native code (llama.cpp, ctranslate2, onnxruntime, pjsip) prints the
    Python stack of the thread that crashed, alone: pytest's own handler (turned off in pyproject)
    prints every thread, which buries the one that matters when a run's log is cut short. Set here,
    where stderr is not captured yet, on a copy of it that outlives the capture."""
    faulthandler.enable(file=os.dup(sys.stderr.fileno()), all_threads=False)


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
