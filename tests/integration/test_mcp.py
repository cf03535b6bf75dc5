"""An MCP server (stdio, started by the test) bridged onto the bus: its tools reach voxbus by the
same path as any other (discovery, schema checks, refusals), on a real NATS server."""

from __future__ import annotations

import sys
from pathlib import Path

import nats
import pytest

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
