"""``[mcp.NAME]``: MCP servers that voxbus up bridges to the bus, each a supervised worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxbus.config import Settings
from voxbus.supervisors.system import DEFAULT_WORKERS, System, mcp_workers


def test_each_configured_mcp_server_is_a_supervised_bridge_of_voxbus_up() -> None:
    settings = Settings.model_validate(
        {"mcp": {"crm": {"url": "http://10.0.0.9/mcp"}, "stock": {"command": ["python", "stock.py"]}}}
    )
    assert mcp_workers(settings) == (("mcp", "mcp-crm", ["crm"]), ("mcp", "mcp-stock", ["stock"]))
    assert System(settings).workers[len(DEFAULT_WORKERS) + 1 :] == mcp_workers(settings)  # after the console


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ({"CRM": {"url": "http://x"}}, "String should match pattern"),  # its tools are crm_<tool>
        ({"crm": {}}, "give either command"),
        ({"crm": {"command": ["x"], "url": "http://x"}}, "give either command"),
        ({"crm": {"url": "ftp://x"}}, "String should match pattern"),
        ({"crm": {"url": "http://x", "timeout": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_a_wrong_mcp_server_is_said_in_one_line(servers: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings.model_validate({"mcp": servers})
