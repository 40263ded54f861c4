//! Gatehouse for the OpenAI Agents SDK (`@openai/agents`): guard every tool of an agent in one line.
//!
//! ```ts
//! const gate = new Gatehouse({ sessionId: conversationId });
//! const agent = guardAgent(new Agent({ name: "ops", tools: [sendEmail, getWeather] }), gate);
//! let result = await run(agent, "...");
//! while (result.interruptions.length > 0) {            // paused by Gatehouse: a person decides
//!   const state = await applyGatehouseDecisions(result.state, gate);
//!   result = await run(agent, state);
//! }
//! ```
//!
//! * `needsApproval` asks Gatehouse without waiting: `allow` and `reject` need no approval, a pause
//!   does, so the run stops with the call in `result.interruptions` (serializable with
//!   `result.state.toString()`, resumable with `RunState.fromString(agent, text)`).
//! * `applyGatehouseDecisions` waits (long poll) for the person's decision in the Gatehouse
//!   dashboard or CLI and approves or rejects each interruption with it (the model gets the reason).
//! * A tool input guardrail is the last word before the tool runs: it asks again (the same
//!   session and call id re-attach to the same action) and runs the tool only on `allow`; a reject
//!   is `rejectContent` with the reason; no answer throws and the tool does not run.
//!
//! Tools the agent gets from MCP servers are guarded too (the agent's `getAllTools` is wrapped);
//! name them for the policy with `toolNames` (`mcpToolNames("files", await server.listTools())`).
//! The session is the client's: give `new Gatehouse({ sessionId })` a stable value when a run may
//! resume in another process, so the re-sent checks re-attach.

import {
  Agent,
  type FunctionTool,
  type RunState,
  type RunToolApprovalItem,
  type Tool,
  ToolGuardrailFunctionOutputFactory,
  type ToolInputGuardrailDefinition,
  defineToolInputGuardrail,
} from "@openai/agents";

import type { Gatehouse } from "../client.js";
import { GatehouseUnavailable } from "../errors.js";
import { mcpToolName } from "../mcp.js";

const GUARDRAIL = "gatehouse";

export interface GuardOptions {
  /** The tool's name as the policy sees it, by the SDK's tool name (e.g. from `mcpToolNames`). */
  toolNames?: Record<string, string>;
}

function parseArguments(raw: string | undefined): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(raw || "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { _arguments: value };
  } catch {
    return { _raw_arguments: raw };
  }
}

function asInput(value: unknown): Record<string, unknown> {
  if (typeof value === "string") return parseArguments(value);
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  return { _arguments: value };
}

/** A tool input guardrail that lets the tool run only when Gatehouse allows it (waiting through a pause). */
export function gatehouseGuardrail(gate: Gatehouse, policyName: string): ToolInputGuardrailDefinition {
  return defineToolInputGuardrail({
    name: GUARDRAIL,
    run: async ({ toolCall }) => {
      const decision = await gate.check(policyName, parseArguments(toolCall.arguments), { toolUseId: toolCall.callId });
      return decision.allowed
        ? ToolGuardrailFunctionOutputFactory.allow(decision)
        : ToolGuardrailFunctionOutputFactory.rejectContent(`Gatehouse rejected this tool call: ${decision.reason}`, decision);
    },
  });
}

/** A copy of `tool` that Gatehouse guards; the original is unchanged. */
export function guardTool<T extends FunctionTool<any, any, any>>(tool: T, gate: Gatehouse, policyName: string = tool.name): T {
  const others = (tool.inputGuardrails ?? []).filter((g) => g.name !== GUARDRAIL);
  return {
    ...tool,
    needsApproval: async (_ctx: unknown, input: unknown, callId?: string) => {
      const decision = await gate.check(policyName, asInput(input), callId ? { toolUseId: callId, wait: false } : { wait: false });
      return decision.verdict === "pending";
    },
    inputGuardrails: [...others, gatehouseGuardrail(gate, policyName)],
  };
}

function guardAny(tool: Tool<any>, gate: Gatehouse, names: Record<string, string>): Tool<any> {
  return tool.type === "function" ? guardTool(tool, gate, names[tool.name] ?? tool.name) : tool;
}

/**
 * A copy of `agent` (and of the agents it hands off to) whose function tools, its MCP servers'
 * included, Gatehouse guards (see the module docs).
 */
export function guardAgent<A extends Agent<any, any>>(agent: A, gate: Gatehouse, options: GuardOptions = {}): A {
  const names = options.toolNames ?? {};
  const copies = new Map<Agent<any, any>, Agent<any, any>>();
  const visit = (a: Agent<any, any>): Agent<any, any> => {
    const known = copies.get(a);
    if (known) return known;
    const clone = a.clone({ tools: a.tools.map((t) => guardAny(t, gate, names)) });
    copies.set(a, clone);
    const mcpTools = clone.getMcpTools.bind(clone);
    clone.getMcpTools = async (...args: Parameters<typeof mcpTools>) =>
      (await mcpTools(...args)).map((t) => guardAny(t, gate, names));
    clone.handoffs = a.handoffs.map((h) => (h instanceof Agent ? visit(h) : h));
    return clone;
  };
  return visit(agent) as A;
}

/** `{ [tool.name]: "mcp__<server>__<tool.name>" }` for tools listed by the MCP server `server`. */
export function mcpToolNames(server: string, tools: Iterable<{ name: string }>): Record<string, string> {
  const names: Record<string, string> = {};
  for (const t of tools) names[t.name] = mcpToolName(server, t.name);
  return names;
}

/**
 * Waits for Gatehouse's decision on each interruption of `state` (a person in the dashboard or
 * CLI, or the deadline) and records it: approve on `allow`, reject with the reason otherwise.
 * Resume with `run(agent, state)`. Throws `GatehouseUnavailable` if no decision can be had.
 */
export async function applyGatehouseDecisions<S extends RunState<any, any>>(
  state: S,
  gate: Gatehouse,
  options: GuardOptions = {},
): Promise<S> {
  const names = options.toolNames ?? {};
  for (const item of state.getInterruptions() as RunToolApprovalItem[]) {
    const raw = item.rawItem as { callId?: unknown; arguments?: unknown };
    const name = item.name;
    if (typeof raw.callId !== "string" || name === undefined) {
      throw new GatehouseUnavailable("interruption without a tool call id");
    }
    const args = typeof raw.arguments === "string" ? raw.arguments : undefined;
    const decision = await gate.check(names[name] ?? name, parseArguments(args), { toolUseId: raw.callId });
    if (decision.allowed) state.approve(item);
    else state.reject(item, { message: `Gatehouse rejected this tool call: ${decision.reason}` });
  }
  return state;
}
