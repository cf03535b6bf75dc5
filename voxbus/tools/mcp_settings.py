"""``[mcp.NAME]``: MCP servers whose tools ``voxbus up`` serves to the agents, each through a
supervised bridge process (``voxbus mcp NAME``), restarted like any worker when it fails."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

SERVER_NAME = r"^[a-z][a-z0-9]{0,15}$"  # its tools are named <server>_<tool>


class McpServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(
        default_factory=list, description="a stdio MCP server: the command that starts it"
    )
    url: str = Field(default="", pattern=r"^(https?://\S+)?$", description="a streamable-HTTP MCP server")
    timeout_s: float = Field(default=5.0, gt=0, description="seconds a call to one of its tools may take")

    @model_validator(mode="after")
    def _one_place(self) -> McpServerSettings:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (a stdio server) or url (an HTTP server)")
        return self
