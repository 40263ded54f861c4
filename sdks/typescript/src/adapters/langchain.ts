//! Gatehouse for LangChain.js agents (`createAgent`, on LangGraph): a middleware in the shape of
//! `humanInTheLoopMiddleware` whose decisions come from Gatehouse instead of the app.
//!
//! ```ts
//! const agent = createAgent({ model, tools, middleware: [gatehouseMiddleware(new Gatehouse())], checkpointer });
//! ```
//!
//! Each tool call (or those named in `tools`) is checked before it runs: `allow` (a rule, or a person
//! approving a pause) → approve, the tool runs as asked; `reject` (a rule, a person denying, the
//! deadline) → reject, the tool does not run and the model gets a `ToolMessage` (status `error`)
//! with the reason; there is no edit (a Gatehouse approval is bound to the exact action); no answer
//! throws `GatehouseUnavailable` out of the agent, and the tool does not run.
//!
//! A pause waits in the tool call for the person's decision (`onPause: "wait"`, the default, a long
//! poll), or (`onPause: "interrupt"`) becomes a LangGraph `interrupt` whose value describes the
//! paused action; resume with `new Command({ resume: ... })` once the person decided in the
//! dashboard or CLI: the middleware asks again (the same session and tool call id re-attach) and
//! follows Gatehouse, whatever the resume value says. The session is the LangGraph `thread_id` when
//! there is one. MCP tools (`@langchain/mcp-adapters`) are named for the policy with
//! `toolNames: mcpToolNames("server", tools)`.

import { interrupt } from "@langchain/langgraph";
import { ToolMessage, createMiddleware } from "langchain";

import type { CheckOptions, Gatehouse } from "../client.js";
import type { Decision } from "../decision.js";
import { mcpToolName } from "../mcp.js";

export interface GatehouseMiddlewareOptions {
  /** Only these tool names are checked (default: every tool). */
  tools?: Iterable<string>;
  /** The tool's name as the policy sees it, by the agent's tool name. */
  toolNames?: Record<string, string>;
  /** `"wait"` (default): a pause waits for the decision; `"interrupt"`: it becomes a LangGraph interrupt. */
  onPause?: "wait" | "interrupt";
}

/** The value of the LangGraph interrupt raised for a paused tool call (`onPause: "interrupt"`). */
export interface GatehousePause {
  type: "gatehouse_pause";
  toolCallId: string | undefined;
  name: string;
  args: Record<string, unknown>;
  actionId: string;
  description: string;
}

/** `{ [tool.name]: "mcp__<server>__<tool.name>" }` for tools loaded from the MCP server `server`. */
export function mcpToolNames(server: string, tools: Iterable<{ name: string }>): Record<string, string> {
  const names: Record<string, string> = {};
  for (const t of tools) names[t.name] = mcpToolName(server, t.name);
  return names;
}

function rejection(call: { id?: string; name: string }, decision: Decision): ToolMessage {
  return new ToolMessage({
    content: `Gatehouse rejected this tool call: ${decision.reason}`,
    tool_call_id: call.id ?? "",
    name: call.name,
    status: "error",
  });
}

/** The middleware (see the module docs). */
export function gatehouseMiddleware(gate: Gatehouse, options: GatehouseMiddlewareOptions = {}) {
  const only = options.tools === undefined ? null : new Set(options.tools);
  const names = options.toolNames ?? {};
  const onPause = options.onPause ?? "wait";
  if (onPause !== "wait" && onPause !== "interrupt") throw new RangeError(`onPause must be "wait" or "interrupt"`);
  return createMiddleware({
    name: "GatehouseMiddleware",
    wrapToolCall: async (request, handler) => {
      const call = request.toolCall;
      if (only !== null && !only.has(call.name)) return handler(request);
      const tool = names[call.name] ?? call.name;
      const args = (call.args ?? {}) as Record<string, unknown>;
      const check: CheckOptions = {};
      if (call.id) check.toolUseId = call.id;
      const thread = request.runtime?.configurable?.thread_id;
      if (thread !== undefined) check.sessionId = String(thread);
      if (onPause === "interrupt") {
        const first = await gate.check(tool, args, { ...check, wait: false });
        if (first.verdict === "pending") {
          const pause: GatehousePause = {
            type: "gatehouse_pause",
            toolCallId: call.id,
            name: call.name,
            args,
            actionId: first.actionId,
            description: `Paused by Gatehouse: ${first.reason}. Decide it in the Gatehouse dashboard or with \`gatehouse approve ${first.actionId}\`, then resume.`,
          };
          interrupt(pause);
        }
      }
      const decision = await gate.check(tool, args, check);
      return decision.allowed ? handler(request) : rejection(call, decision);
    },
  });
}
