"""Names of tools loaded from MCP servers, as Gatehouse policies see them: `mcp__<server>__<tool>`."""

from __future__ import annotations

MCP_PREFIX = "mcp__"


def mcp_tool_name(server: str, tool: str) -> str:
    """`mcp__<server>__<tool>`, the name Claude Code and the Gatehouse MCP proxy use."""
    return f"{MCP_PREFIX}{server}__{tool}"


def is_mcp_tool_name(name: str) -> bool:
    return name.startswith(MCP_PREFIX) and "__" in name[len(MCP_PREFIX) :]
