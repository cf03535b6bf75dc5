"""An MCP server (stdio, started by the test) bridged onto the bus: its tools reach voxbus by the
same path as any other (discovery, schema checks, refusals), on a real NATS server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import nats
import pytest

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import load_settings
from voxbus.schemas.events import Event, WorkerRestarted
from voxbus.supervisors.serving import pid_of
from voxbus.supervisors.system import System, mcp_workers
from voxbus.tools.catalog import discover
from voxbus.tools.invoke import CallContext, call_tool
from voxbus.tools.mcp_bridge import bridge, mcp_session, tool_name

pytestmark = pytest.mark.integration
SERVER = [sys.executable, str(Path(__file__).resolve().parents[1] / "mcp_server.py")]
CALL = CallContext(call_id="c1")


def test_mcp_tool_names_become_voxbus_names() -> None:
    assert tool_name("Stock", "countItems") == "stock_countitems"
    assert tool_name("crm", "get-customer.v2") == "crm_get_customer_v2"


async def test_an_mcp_servers_tools_are_served_on_the_bus(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    async with mcp_session(command=SERVER) as session:
        service = await bridge(nc, "stock", session)
        catalog = await discover(nc)
        assert {"stock_add", "stock_count_items"} <= set(catalog.tools) and not catalog.problems
        spec = catalog.tools["stock_count_items"]
        assert "in stock" in spec.description and spec.parameters["required"] == ["item"]
        found = await call_tool(nc, spec, "stock_count_items", {"item": "toothbrush"}, CALL, "k1")
        assert found.ok and found.result == {"result": 12}
        summed = await call_tool(nc, catalog.tools["stock_add"], "stock_add", {"a": 2, "b": 3}, CALL, "k2")
        assert summed.ok and summed.result == {"result": 5}
        missing = await call_tool(nc, spec, "stock_count_items", {"item": "gold"}, CALL, "k3")
        assert missing.failure == "refused" and "gold" in missing.error  # the MCP error, in words
        bad = await call_tool(nc, spec, "stock_count_items", {"thing": 1}, CALL, "k4")
        assert bad.failure == "bad_arguments"
        await service.stop()
    await nc.drain()


async def test_voxbus_up_bridges_a_configured_mcp_server_and_restarts_the_bridge(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[mcp.stock]``: a supervised bridge (its own credential, heartbeats) serves the tools; killed,
    it is restarted and serves them again."""
    monkeypatch.setenv("VOXBUS_MCP", json.dumps({"stock": {"command": SERVER}}))
    settings = load_settings()
    system = System(settings, workers=mcp_workers(settings))  # what voxbus up adds to its workers
    await system.start()
    bus = Bus(system.url, "test", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    restarts: list[Event] = []

    async def on_restart(event: Event, _m: object) -> None:
        restarts.append(event)

    try:
        await bus.subscribe(subjects.system_event("worker.restarted"), None, on_restart)
        pid = await pid_of(bus, "mcp", "mcp-stock")
        catalog = await discover(bus.nc)
        found = await call_tool(bus.nc, catalog.tools["stock_add"], "stock_add", {"a": 2, "b": 3}, CALL, "k1")
        assert found.ok and found.result == {"result": 5}
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(30):
            while not any(isinstance(e, WorkerRestarted) and e.worker_id == "mcp-stock" for e in restarts):
                await asyncio.sleep(0.1)
        assert await pid_of(bus, "mcp", "mcp-stock") != pid
        catalog = await discover(bus.nc)
        again = await call_tool(bus.nc, catalog.tools["stock_add"], "stock_add", {"a": 1, "b": 1}, CALL, "k2")
        assert again.ok and again.result == {"result": 2}
    finally:
        await bus.close()
        await system.stop()
