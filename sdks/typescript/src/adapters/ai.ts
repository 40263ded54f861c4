//! Gatehouse for the Vercel AI SDK (`ai` 7.x): a `toolApproval` function answering from Gatehouse.
//!
//! ```ts
//! const gate = new Gatehouse({ sessionId: chatId });
//! const result = await generateText({ model, tools: guardTools(tools, gate), toolApproval: gatehouseToolApproval(gate), prompt });
//! ```
//!
//! For each tool call the model makes, `gatehouseToolApproval` asks Gatehouse without waiting:
//! `allow` → `approved`, `reject` → `denied` with the reason (the model gets it in the
//! `execution-denied` result), a pause → `user-approval` with the pause's reason, so the call
//! surfaces as a `tool-approval-request`. `gatehouseApprovalResponses(gate, result.content)` then
//! waits for the person's decision in the Gatehouse dashboard or CLI and answers each request
//! with it (`tool-approval-response` parts for the next call's `{ role: "tool" }` message). No
//! answer from Gatehouse throws, and nothing runs. `onPause: "wait"` waits inside the approval
//! function instead (a long poll) and answers `approved` / `denied` directly.
//!
//! `guardTools` makes Gatehouse the last word: each tool's `execute` asks again (the same session
//! and tool call id re-attach to the same action) and runs only on `allow`, so an approval given in
//! the app alone runs nothing. MCP tools (from `@ai-sdk/mcp`'s `client.tools()`) are named for the
//! policy with `toolNames: mcpToolNames("server", tools)`.

import type { ToolExecutionOptions, ToolSet } from "ai";

import type { Gatehouse } from "../client.js";
import { ActionRejected } from "../errors.js";
import { mcpToolName } from "../mcp.js";

export interface AiGuardOptions {
  /** The tool's name as the policy sees it, by the AI SDK's tool name. */
  toolNames?: Record<string, string>;
  /** `"user-approval"` (default): a pause becomes the SDK's approval request; `"wait"`: wait for the decision. */
  onPause?: "user-approval" | "wait";
}

/** The approval status the AI SDK expects from a `toolApproval` function. */
export type GatehouseApprovalStatus =
  | { type: "approved"; reason?: string }
  | { type: "denied"; reason?: string }
  | { type: "user-approval"; reason?: string };

/** The part of an AI SDK tool call a check needs. */
export interface AiToolCall {
  toolName: string;
  toolCallId: string;
  input: unknown;
}

function asInput(value: unknown): Record<string, unknown> {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  return { _input: value };
}

/** A `toolApproval` function (the generic form, for every tool) that answers from Gatehouse. */
export function gatehouseToolApproval(
  gate: Gatehouse,
  options: AiGuardOptions = {},
): (options: { toolCall: AiToolCall }) => Promise<GatehouseApprovalStatus> {
  const names = options.toolNames ?? {};
  const wait = options.onPause === "wait";
  return async ({ toolCall }) => {
    const decision = await gate.check(names[toolCall.toolName] ?? toolCall.toolName, asInput(toolCall.input), {
      toolUseId: toolCall.toolCallId,
      wait,
    });
    if (decision.verdict === "allow") return { type: "approved", reason: decision.reason };
    if (decision.verdict === "reject") return { type: "denied", reason: `Gatehouse rejected this tool call: ${decision.reason}` };
    return { type: "user-approval", reason: `Paused by Gatehouse: ${decision.reason} (action ${decision.actionId})` };
  };
}

/** The approval-response parts for the SDK's next call, one per open approval request in `content`. */
export interface GatehouseApprovalResponse {
  type: "tool-approval-response";
  approvalId: string;
  approved: boolean;
  reason?: string;
}

/**
 * Waits for Gatehouse's decision (a person, or the deadline) on each `tool-approval-request` in
 * `content` (`result.content` of `generateText`) and returns the `tool-approval-response` parts to
 * send back as `{ role: "tool", content: responses }`.
 */
export async function gatehouseApprovalResponses(
  gate: Gatehouse,
  content: ReadonlyArray<{ type: string }>,
  options: AiGuardOptions = {},
): Promise<GatehouseApprovalResponse[]> {
  const names = options.toolNames ?? {};
  const responses: GatehouseApprovalResponse[] = [];
  for (const part of content) {
    if (part.type !== "tool-approval-request") continue;
    const request = part as { type: string; approvalId: string; toolCall: AiToolCall; isAutomatic?: boolean };
    if (request.isAutomatic) continue;
    const { toolCall } = request;
    const decision = await gate.check(names[toolCall.toolName] ?? toolCall.toolName, asInput(toolCall.input), {
      toolUseId: toolCall.toolCallId,
    });
    responses.push({
      type: "tool-approval-response",
      approvalId: request.approvalId,
      approved: decision.allowed,
      reason: decision.allowed ? decision.reason : `Gatehouse rejected this tool call: ${decision.reason}`,
    });
  }
  return responses;
}

/**
 * The same tools, each `execute` checked by Gatehouse first (re-attaching to the action
 * `toolApproval` recorded): it runs only on `allow`; a reject throws `ActionRejected` (the model
 * gets a tool error); no answer throws `GatehouseUnavailable`.
 */
export function guardTools<T extends ToolSet>(tools: T, gate: Gatehouse, options: AiGuardOptions = {}): T {
  const names = options.toolNames ?? {};
  const guarded: Record<string, unknown> = {};
  for (const [name, tool] of Object.entries(tools)) {
    const execute = tool.execute as ((input: unknown, options: ToolExecutionOptions<any>) => unknown) | undefined;
    if (execute === undefined) {
      guarded[name] = tool;
      continue;
    }
    guarded[name] = {
      ...tool,
      execute: async (input: unknown, execOptions: ToolExecutionOptions<any>) => {
        const decision = await gate.check(names[name] ?? name, asInput(input), { toolUseId: execOptions.toolCallId });
        if (!decision.allowed) {
          throw new ActionRejected(decision.reason, decision.actionId, decision.decidedBy, decision.ruleId);
        }
        return execute(input, execOptions);
      },
    };
  }
  return guarded as T;
}

/** `{ [name]: "mcp__<server>__<name>" }` for the tools an MCP client loaded from the server `server`. */
export function mcpToolNames(server: string, tools: Record<string, unknown> | Iterable<string>): Record<string, string> {
  const names: Record<string, string> = {};
  const keys = Symbol.iterator in Object(tools) ? (tools as Iterable<string>) : Object.keys(tools);
  for (const key of keys) names[key] = mcpToolName(server, key);
  return names;
}
