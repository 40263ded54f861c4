// The OpenAI Agents SDK adapter with the real `@openai/agents` and the real daemon. The model is
// the SDK's own `ScriptedModel` (a scripted fake: no model API is reachable here); the runner,
// tools, approvals, run state, guardrails and a real stdio MCP server are real.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Agent, MCPServerStdio, RunState, run, tool } from "@openai/agents";
import { ScriptedModel, assistantMessage, functionCall } from "@openai/agents/testing";
import { Gatehouse, GatehouseUnavailable } from "@gatehouse/sdk";
import { applyGatehouseDecisions, guardAgent, mcpToolNames } from "@gatehouse/sdk/openai-agents";
import { z } from "zod";

import { Daemon, freePort } from "./daemon.mjs";

let daemon;
before(async () => { daemon = await Daemon.start(); });
after(async () => { await daemon.stop(); });

const ran = [];
beforeEach(() => { ran.length = 0; });

const getWeather = tool({ name: "get_weather", description: "The weather in a city.", parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => { ran.push(`get_weather:${city}`); return `sunny in ${city}`; } });
const deleteFile = tool({ name: "delete_file", description: "Deletes a file.", parameters: z.object({ path: z.string() }),
  execute: async ({ path }) => { ran.push(`delete_file:${path}`); return "deleted"; } });
const sendEmail = tool({ name: "send_email", description: "Sends an email.", parameters: z.object({ to: z.string() }),
  execute: async ({ to }) => { ran.push(`send_email:${to}`); return "sent"; } });

const agentFor = (model) => new Agent({ name: "ops", instructions: "help", model, tools: [getWeather, deleteFile, sendEmail] });
const gateFor = (session, opts = {}) => new Gatehouse({ url: daemon.url, token: daemon.agentToken, env: {}, sessionId: session, pollWaitMs: 1000, ...opts });
/** Everything the model was sent after its first turn, as text (tool results included). */
const toldModel = (model) => JSON.stringify(model.calls.slice(1).map((c) => c.request.input));

/** The SDK wraps a guardrail's error in its own (`ToolCallError`, the original in `.error`). */
function causedByGatehouse(err) {
  for (let e = err; e; e = e.error ?? e.cause) if (e instanceof GatehouseUnavailable) return true;
  return false;
}

test("an allowed tool runs", async () => {
  const model = new ScriptedModel([[functionCall("get_weather", { city: "Lisbon" }, { callId: "call_w1" })], [assistantMessage("It is sunny.")]]);
  const result = await run(guardAgent(agentFor(model), gateFor("ts-oa-allow")), "weather?");
  assert.equal(result.finalOutput, "It is sunny.");
  assert.deepEqual(ran, ["get_weather:Lisbon"]);
  assert.match(toldModel(model), /sunny in Lisbon/);
});

test("a rejected tool does not run and the model gets the reason", async () => {
  const model = new ScriptedModel([[functionCall("delete_file", { path: "/etc" }, { callId: "call_d1" })], [assistantMessage("I may not.")]]);
  const result = await run(guardAgent(agentFor(model), gateFor("ts-oa-reject")), "delete");
  assert.equal(result.finalOutput, "I may not.");
  assert.deepEqual(ran, []);
  assert.match(toldModel(model), /deleting files is not allowed here/);
});

for (const decision of ["approve", "deny"]) {
  test(`a paused tool is an interruption, resumed from serialized state after a person's ${decision}`, async () => {
    const session = `ts-oa-pause-${decision}`;
    const model = new ScriptedModel([[functionCall("send_email", { to: "boss@example.com" }, { callId: `call_s_${decision}` })], [assistantMessage("Done.")]]);
    const first = await run(guardAgent(agentFor(model), gateFor(session)), "email the boss");
    assert.deepEqual(first.interruptions.map((i) => i.name), ["send_email"]);
    assert.deepEqual(ran, [], "a paused call does not run before the decision");
    const saved = first.state.toString();

    // Later (another process would do the same): a person decides in Gatehouse, the run resumes.
    const person = daemon.decideWhenPending(decision, { toolUseId: `call_s_${decision}`, note: "checked" });
    const gate = gateFor(session);
    const agent = guardAgent(agentFor(model), gate);
    const state = await applyGatehouseDecisions(await RunState.fromString(agent, saved), gate);
    const result = await run(agent, state);
    await person;
    assert.equal(result.finalOutput, "Done.");
    if (decision === "approve") assert.deepEqual(ran, ["send_email:boss@example.com"]);
    else {
      assert.deepEqual(ran, []);
      assert.match(toldModel(model), /denied[^"]*checked/);
    }
    const recorded = (await daemon.actions()).filter((a) => a.session_id === session);
    assert.equal(recorded.length, 1, "every check of the call re-attached to one action");
  });
}

test("approving in the app alone does not run the tool", async () => {
  const model = new ScriptedModel([[functionCall("send_email", { to: "x@example.com" }, { callId: "call_app_only" })], [assistantMessage("Done.")]]);
  const agent = guardAgent(agentFor(model), gateFor("ts-oa-app-only", { timeoutMs: 1000, pollWaitMs: 200 }));
  const first = await run(agent, "email");
  for (const item of first.interruptions) first.state.approve(item);
  await assert.rejects(run(agent, first.state), (err) => causedByGatehouse(err));
  assert.deepEqual(ran, []);
});

test("daemon down: the tool does not run", async () => {
  const model = new ScriptedModel([[functionCall("get_weather", { city: "Oslo" }, { callId: "call_down" })], [assistantMessage("?")]]);
  const gate = new Gatehouse({ url: `http://127.0.0.1:${await freePort()}`, token: "t", env: {} });
  await assert.rejects(run(guardAgent(agentFor(model), gate), "weather?"), (err) => causedByGatehouse(err));
  assert.deepEqual(ran, []);
});

test("MCP server tools are checked as mcp__<server>__<tool>", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-mcp-"));
  const deleted = join(dir, "deleted.txt");
  const server = new MCPServerStdio({ name: "files", command: process.execPath,
    args: [fileURLToPath(new URL("./fixtures/files-mcp-server.mjs", import.meta.url)), deleted] });
  await server.connect();
  try {
    const model = new ScriptedModel([
      [functionCall("read_file", { path: "notes.txt" }, { callId: "call_m1" }), functionCall("delete_file", { path: "notes.txt" }, { callId: "call_m2" })],
      [assistantMessage("Read it; could not delete it.")],
    ]);
    const names = mcpToolNames("files", await server.listTools());
    const agent = guardAgent(new Agent({ name: "mcp", model, mcpServers: [server] }), gateFor("ts-oa-mcp"), { toolNames: names });
    const result = await run(agent, "read then delete notes.txt");
    assert.equal(result.finalOutput, "Read it; could not delete it.");
    assert.equal(existsSync(deleted), false, "the rejected MCP call did not reach the server");
    assert.match(toldModel(model), /contents of notes.txt/);
    assert.match(toldModel(model), /deleting files is not allowed here/);
    const tools = (await daemon.actions()).filter((a) => a.session_id === "ts-oa-mcp").map((a) => a.tool).sort();
    assert.deepEqual(tools, ["mcp__files__delete_file", "mcp__files__read_file"]);
  } finally {
    await server.close();
  }
});
