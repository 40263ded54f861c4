//! Gatehouse SDK: ask the local Gatehouse daemon before an agent's tool call runs, and fail closed.
//! Adapters: `@gatehouse/sdk/openai-agents`, `@gatehouse/sdk/langchain`, `@gatehouse/sdk/ai`.

export { Gatehouse, newToolUseId } from "./client.js";
export type { CheckOptions, GatehouseOptions } from "./client.js";
export { DEFAULT_URL, dataDir, resolveEndpoint } from "./config.js";
export type { Endpoint } from "./config.js";
export { parseDecision } from "./decision.js";
export type { Decision, Tier2Score, Verdict } from "./decision.js";
export {
  ActionRejected,
  GatehouseApiError,
  GatehouseConfigError,
  GatehouseError,
  GatehouseTimeout,
  GatehouseUnavailable,
} from "./errors.js";
export { guarded } from "./guard.js";
export type { GuardOptions } from "./guard.js";
export { MCP_PREFIX, isMcpToolName, mcpToolName } from "./mcp.js";
