"""A system whose start fails after its embedded nats-server is up leaves no process behind (the
nats-servers of a cluster that could not create its stream once outlived the test run)."""

from __future__ import annotations

import os

import pytest
from nats.js import JetStreamContext

from voxbus.config import Settings
from voxbus.supervisors import system as system_module
from voxbus.supervisors.system import System

pytestmark = pytest.mark.integration


class StreamRefused(RuntimeError):
    pass


async def test_a_failed_start_stops_the_nats_server_it_started(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(_js: JetStreamContext, _replicas: int = 1) -> None:
        raise StreamRefused("no suitable peers for placement")

    monkeypatch.setattr(system_module, "ensure_events_stream", refuse)
    system = System(settings)
    with pytest.raises(StreamRefused):
        await system.start()
    assert system.nats is not None and system.nats.proc is not None
    assert system.nats.proc.returncode is not None  # stopped and reaped
    with pytest.raises(ProcessLookupError):
        os.kill(system.nats.proc.pid, 0)
