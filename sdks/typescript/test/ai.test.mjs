// The Vercel AI SDK adapter with the real `ai` 7.x and the real daemon. The model is the SDK's
// own `MockLanguageModelV4` from `ai/test` with scripted answers (a fake: no model API is reachable
// here); generateText's tool loop, approvals and tool execution are the real SDK.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { Gatehouse, GatehouseUnavailable } from "@gatehouse/sdk";
import { gatehouseApprovalResponses, gatehouseToolApproval, guardTools, mcpToolNames } from "@gatehouse/sdk/ai";
import { z } from "zod";

import { Daemon, freePort } from "./daemon.mjs";

let daemon;
before(async () => { daemon = await Daemon.start(); });
after(async () => { await daemon.stop(); });

const ran = [];
beforeEach(() => { ran.length = 0; });

const tools = {
  get_weather: tool({ description: "The weather in a city.", inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => { ran.push(`get_weather:${city}`); return `sunny in ${city}`; } }),
  delete_file: tool({ description: "Deletes a file.", inputSchema: z.object({ path: z.string() }),
    execute: async ({ path }) => { ran.push(`delete_file:${path}`); return "deleted"; } }),
  send_email: tool({ description: "Sends an email.", inputSchema: z.object({ to: z.string() }),
    execute: async ({ to }) => { ran.push(`send_email:${to}`); return "sent"; } }),
};

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
const toolCallTurn = (...calls) => ({
  content: calls.map(([toolName, input, toolCallId]) => ({ type: "tool-call", toolCallId, toolName, input: JSON.stringify(input) })),
  finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage, warnings: [],
});
const textTurn = (text) => ({ content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] });
/** What the model was sent in its later turns, as text (tool results and denials included). */
const toldModel = (model) => JSON.stringify(model.doGenerateCalls.slice(1).map((c) => c.prompt));
const gateFor = (session, opts = {}) => new Gatehouse({ url: daemon.url, token: daemon.agentToken, env: {}, sessionId: session, pollWaitMs: 1000, ...opts });

async function generate(model, gate, extra = {}) {
  return generateText({ model, tools: guardTools(tools, gate), toolApproval: gatehouseToolApproval(gate), stopWhen: stepCountIs(5), ...extra });
}

test("an allowed tool runs", async () => {
  const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["get_weather", { city: "Lisbon" }, "ai_w1"]), textTurn("Sunny.")] });
  const result = await generate(model, gateFor("ai-allow"), { prompt: "weather?" });
  assert.equal(result.text, "Sunny.");
  assert.deepEqual(ran, ["get_weather:Lisbon"]);
  assert.match(toldModel(model), /sunny in Lisbon/);
});

test("a rejected tool does not run and the model gets the reason", async () => {
  const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["delete_file", { path: "/etc" }, "ai_d1"]), textTurn("Cannot.")] });
  const result = await generate(model, gateFor("ai-reject"), { prompt: "delete" });
  assert.equal(result.text, "Cannot.");
  assert.deepEqual(ran, []);
  assert.match(toldModel(model), /deleting files is not allowed here/);
});

for (const decision of ["approve", "deny"]) {
  test(`a paused tool is a user-approval request, answered by a person's ${decision} in Gatehouse`, async () => {
    const session = `ai-pause-${decision}`;
    const gate = gateFor(session);
    const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["send_email", { to: "boss@example.com" }, `ai_s_${decision}`]), textTurn("Done.")] });
    const messages = [{ role: "user", content: "email the boss" }];
    const first = await generate(model, gate, { messages });
    const requests = first.content.filter((p) => p.type === "tool-approval-request");
    assert.equal(requests.length, 1);
    assert.match(requests[0].reason, /sending leaves the machine/);
    assert.deepEqual(ran, [], "a paused call does not run before the decision");

    const person = daemon.decideWhenPending(decision, { toolUseId: `ai_s_${decision}`, note: "checked" });
    const responses = await gatehouseApprovalResponses(gate, first.content);
    await person;
    assert.deepEqual(responses.map((r) => r.approved), [decision === "approve"]);
    messages.push(...first.response.messages, { role: "tool", content: responses });
    const result = await generate(model, gate, { messages });
    assert.equal(result.text, "Done.");
    if (decision === "approve") assert.deepEqual(ran, ["send_email:boss@example.com"]);
    else {
      assert.deepEqual(ran, []);
      assert.match(toldModel(model), /denied[^"]*checked/);
    }
    assert.equal((await daemon.actions()).filter((a) => a.session_id === session).length, 1);
  });
}

test("approving in the app alone does not run the tool", async () => {
  const gate = gateFor("ai-app-only", { timeoutMs: 1000, pollWaitMs: 200 });
  const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["send_email", { to: "x@example.com" }, "ai_app_only"]), textTurn("Done.")] });
  const messages = [{ role: "user", content: "email" }];
  const first = await generate(model, gate, { messages });
  const forged = first.content.filter((p) => p.type === "tool-approval-request")
    .map((p) => ({ type: "tool-approval-response", approvalId: p.approvalId, approved: true }));
  assert.equal(forged.length, 1);
  messages.push(...first.response.messages, { role: "tool", content: forged });
  await generate(model, gate, { messages });
  assert.deepEqual(ran, [], "Gatehouse still pending: the guarded execute did not run the tool");
  assert.match(toldModel(model), /timed out waiting for the gatehouse daemon/);
});

test("onPause: wait answers approved after the person's decision", async () => {
  const gate = gateFor("ai-wait");
  const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["send_email", { to: "cto@example.com" }, "ai_wait_1"]), textTurn("Sent.")] });
  const person = daemon.decideWhenPending("approve", { toolUseId: "ai_wait_1" });
  const result = await generate(model, gate, { prompt: "email", toolApproval: gatehouseToolApproval(gate, { onPause: "wait" }) });
  await person;
  assert.equal(result.text, "Sent.");
  assert.deepEqual(ran, ["send_email:cto@example.com"]);
});

test("daemon down: the tool does not run", async () => {
  const gate = new Gatehouse({ url: `http://127.0.0.1:${await freePort()}`, token: "t", env: {} });
  const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["get_weather", { city: "Oslo" }, "ai_down"]), textTurn("?")] });
  await assert.rejects(generate(model, gate, { prompt: "weather?" }), (err) => {
    for (let e = err; e; e = e.cause) if (e instanceof GatehouseUnavailable) return true;
    return false;
  });
  assert.deepEqual(ran, []);
});

test("MCP tools are checked as mcp__<server>__<tool>", async () => {
  const mcpTools = { read_file: tools.get_weather, delete_file: tools.delete_file };
  const names = mcpToolNames("files", mcpTools);
  const gate = gateFor("ai-mcp");
  const model = new MockLanguageModelV4({ doGenerate: [toolCallTurn(["read_file", { city: "a" }, "ai_m1"], ["delete_file", { path: "a" }, "ai_m2"]), textTurn("Done.")] });
  const result = await generateText({ model, tools: guardTools(mcpTools, gate, { toolNames: names }),
    toolApproval: gatehouseToolApproval(gate, { toolNames: names }), stopWhen: stepCountIs(5), prompt: "go" });
  assert.equal(result.text, "Done.");
  assert.deepEqual(ran, ["get_weather:a"]);
  const recorded = (await daemon.actions()).filter((a) => a.session_id === "ai-mcp").map((a) => a.tool).sort();
  assert.deepEqual(recorded, ["mcp__files__delete_file", "mcp__files__read_file"]);
});
