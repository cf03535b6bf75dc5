"""MCP servers as tool sources: each tool of an MCP server served on ``voxbus.tool.<name>``.

Many companies already expose their systems to AI agents as MCP servers. ``voxbus mcp`` connects to
one (stdio: a command voxbus starts; or streamable HTTP: a URL) with the ``mcp`` package's client,
lists its tools, and serves each as a voxbus tool named ``<server>_<tool>`` (the tool's description
and input schema in the endpoint metadata), so that MCP tools reach the agent by the same path as
any other: discovery, schema checks, timeouts, retries with an idempotency key, and the
``tool.*`` events. An agent takes them in with its ``service_tools`` patterns (``"files_*"``).
A call is answered with the MCP result's structured content, or its text; an MCP error result is a
refusal (``ok: false``) with its text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from nats.aio.client import Client

from voxbus.logs import get_logger
from voxbus.tools.contract import NAME
from voxbus.tools.service import ToolContext, ToolError, ToolService

log = get_logger(__name__)


def tool_name(server: str, tool: str) -> str:
    """``<server>_<tool>`` in the characters a voxbus tool name allows."""
    name = re.sub(r"[^a-z0-9_]+", "_", f"{server}_{tool}".lower()).strip("_")[:48]
    if not NAME.match(name):
        raise ValueError(f"MCP tool {tool!r} of {server!r} gives no usable tool name")
    return name


@contextlib.asynccontextmanager
async def mcp_session(command: list[str] | None = None, url: str | None = None) -> AsyncIterator[Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    if command:
        transport = stdio_client(StdioServerParameters(command=command[0], args=command[1:]))
    elif url:
        transport = streamable_http_client(url)
    else:
        raise ValueError("an MCP server needs a command (stdio) or a url (streamable HTTP)")
    async with transport as streams, ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        yield session


def _answer(result: Any) -> Any:
    text = " ".join(getattr(block, "text", "") for block in result.content or []).strip()
    if result.is_error:
        raise ToolError(text or "the MCP tool failed")
    if result.structured_content is not None:
        return result.structured_content
    return {"text": text}


async def bridge(nc: Client, server: str, session: Any, timeout_s: float = 5.0) -> ToolService:
    """Serve the session's tools on ``nc``; returns the service (stop it to end)."""
    service = ToolService(f"mcp-{server}", description=f"MCP server {server}")
    listed = await session.list_tools()
    for tool in listed.tools:
        name = tool_name(server, tool.name)

        async def call(arguments: dict[str, Any], ctx: ToolContext, original: str = tool.name) -> Any:
            return _answer(await session.call_tool(original, arguments, read_timeout_seconds=timeout_s))

        schema = dict(tool.input_schema or {"type": "object", "properties": {}})
        description = (tool.description or tool.title or tool.name).strip()[:1024]
        service.add(name, description, schema, call, timeout_s)
    await service.start(nc)
    log.info("MCP tools served", server=server, tools=sorted(service.tools))
    return service
