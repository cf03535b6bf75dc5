"""A small MCP server (stdio) for the tests: what a company's existing AI-tool server looks like."""

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("stock")
STOCK = {"toothbrush": 12, "floss": 0}


@server.tool()
def count_items(item: str) -> int:
    """How many of an item are in stock at the clinic."""
    if item not in STOCK:
        raise ToolError(f"no item called {item}")
    return STOCK[item]


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


if __name__ == "__main__":
    server.run("stdio")
