//! Names of tools loaded from MCP servers, as Gatehouse policies see them: `mcp__<server>__<tool>`.

export const MCP_PREFIX = "mcp__";

/** `mcp__<server>__<tool>`, the name Claude Code and the Gatehouse MCP proxy use. */
export function mcpToolName(server: string, tool: string): string {
  return `${MCP_PREFIX}${server}__${tool}`;
}

export function isMcpToolName(name: string): boolean {
  return name.startsWith(MCP_PREFIX) && name.slice(MCP_PREFIX.length).includes("__");
}
