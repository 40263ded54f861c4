// The LangChain.js middleware with the real `langchain` + `@langchain/langgraph` and the real
// daemon. The chat model is `fakeModel()` from `@langchain/core/testing` with scripted answers (a
// fake: no model API is reachable here); the agent loop, tool node, middleware, checkpointer and
// interrupts are real.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { fakeModel } from "@langchain/core/testing";
import { Command, MemorySaver } from "@langchain/langgraph";
import { AIMessage, ToolMessage, createAgent, tool } from "langchain";
import { Gatehouse, GatehouseUnavailable } from "@gatehouse/sdk";
import { gatehouseMiddleware, mcpToolNames } from "@gatehouse/sdk/langchain";
import { z } from "zod";

import { Daemon, freePort } from "./daemon.mjs";

let daemon;
before(async () => { daemon = await Daemon.start(); });
after(async () => { await daemon.stop(); });

const ran = [];
beforeEach(() => { ran.length = 0; });

const getWeather = tool(async ({ city }) => { ran.push(`get_weather:${city}`); return `sunny in ${city}`; },
  { name: "get_weather", description: "The weather in a city.", schema: z.object({ city: z.string() }) });
const deleteFile = tool(async ({ path }) => { ran.push(`delete_file:${path}`); return "deleted"; },
  { name: "delete_file", description: "Deletes a file.", schema: z.object({ path: z.string() }) });
const sendEmail = tool(async ({ to }) => { ran.push(`send_email:${to}`); return "sent"; },
  { name: "send_email", description: "Sends an email.", schema: z.object({ to: z.string() }) });
const readFile = tool(async ({ path }) => { ran.push(`read_file:${path}`); return "contents"; },
  { name: "read_file", description: "Reads a file (as an MCP server's tool would be loaded).", schema: z.object({ path: z.string() }) });

const gateFor = (opts = {}) => new Gatehouse({ url: daemon.url, token: daemon.agentToken, env: {}, pollWaitMs: 1000, ...opts });
const scripted = (calls, text) => fakeModel().respondWithTools(calls).respond(new AIMessage(text));
const agentWith = (model, gate, opts = {}) => createAgent({ model, tools: [getWeather, deleteFile, sendEmail, readFile],
  middleware: [gatehouseMiddleware(gate, opts)], checkpointer: new MemorySaver() });
const thread = (id) => ({ configurable: { thread_id: id } });
const toolMessages = (result) => result.messages.filter((m) => ToolMessage.isInstance(m));
const user = (content) => ({ messages: [{ role: "user", content }] });

test("an allowed tool runs", async () => {
  const agent = agentWith(scripted([{ name: "get_weather", args: { city: "Lisbon" }, id: "lcjs_w1" }], "Sunny."), gateFor());
  const result = await agent.invoke(user("weather?"), thread("lcjs-allow"));
  assert.deepEqual(ran, ["get_weather:Lisbon"]);
  assert.deepEqual(toolMessages(result).map((m) => m.content), ["sunny in Lisbon"]);
  assert.equal(result.messages.at(-1).content, "Sunny.");
});

test("a rejected tool does not run and the model gets the reason", async () => {
  const agent = agentWith(scripted([{ name: "delete_file", args: { path: "/etc" }, id: "lcjs_d1" }], "Cannot."), gateFor());
  const result = await agent.invoke(user("delete"), thread("lcjs-reject"));
  assert.deepEqual(ran, []);
  const [message] = toolMessages(result);
  assert.equal(message.status, "error");
  assert.match(String(message.content), /deleting files is not allowed here/);
});

for (const decision of ["approve", "deny"]) {
  test(`a paused tool waits for the person's ${decision}`, async () => {
    const agent = agentWith(scripted([{ name: "send_email", args: { to: "boss@example.com" }, id: `lcjs_s_${decision}` }], "Ok."), gateFor());
    const [result] = await Promise.all([
      agent.invoke(user("email"), thread(`lcjs-wait-${decision}`)),
      daemon.decideWhenPending(decision, { toolUseId: `lcjs_s_${decision}`, note: "reviewed" }),
    ]);
    if (decision === "approve") assert.deepEqual(ran, ["send_email:boss@example.com"]);
    else {
      assert.deepEqual(ran, []);
      assert.match(String(toolMessages(result)[0].content), /reviewed/);
    }
  });
}

test("a paused tool as an interrupt, resumed after the person's decision", async () => {
  const agent = agentWith(scripted([{ name: "send_email", args: { to: "cto@example.com" }, id: "lcjs_int_1" }], "Sent."), gateFor(), { onPause: "interrupt" });
  const config = thread("lcjs-interrupt");
  const first = await agent.invoke(user("email"), config);
  const [paused] = first.__interrupt__;
  assert.equal(paused.value.type, "gatehouse_pause");
  assert.equal(paused.value.name, "send_email");
  assert.deepEqual(ran, []);
  const pending = await daemon.pendingFor({ toolUseId: "lcjs_int_1" });
  assert.equal(pending.action_id, paused.value.actionId);
  assert.equal(pending.session_id, "lcjs-interrupt");
  await daemon.decide(pending, "approve");
  const result = await agent.invoke(new Command({ resume: { type: "approve" } }), config);
  assert.deepEqual(ran, ["send_email:cto@example.com"]);
  assert.equal(result.messages.at(-1).content, "Sent.");
  assert.equal((await daemon.actions()).filter((a) => a.session_id === "lcjs-interrupt").length, 1);
});

test("daemon down: the tool does not run", async () => {
  const gate = new Gatehouse({ url: `http://127.0.0.1:${await freePort()}`, token: "t", env: {} });
  const agent = agentWith(scripted([{ name: "get_weather", args: { city: "Oslo" }, id: "lcjs_down" }], "?"), gate);
  await assert.rejects(agent.invoke(user("weather?"), thread("lcjs-down")), (err) => {
    for (let e = err; e; e = e.cause) if (e instanceof GatehouseUnavailable) return true;
    return false;
  });
  assert.deepEqual(ran, []);
});

test("MCP tools are checked as mcp__<server>__<tool>", async () => {
  const names = mcpToolNames("files", [readFile, deleteFile]);
  const agent = agentWith(scripted([{ name: "read_file", args: { path: "a" }, id: "lcjs_m1" }, { name: "delete_file", args: { path: "a" }, id: "lcjs_m2" }], "Done."),
    gateFor(), { toolNames: names });
  const result = await agent.invoke(user("go"), thread("lcjs-mcp"));
  assert.deepEqual(ran, ["read_file:a"]);
  const statuses = Object.fromEntries(toolMessages(result).map((m) => [m.name, m.status]));
  assert.deepEqual(statuses, { read_file: "success", delete_file: "error" });
  const recorded = (await daemon.actions()).filter((a) => a.session_id === "lcjs-mcp").map((a) => a.tool).sort();
  assert.deepEqual(recorded, ["mcp__files__delete_file", "mcp__files__read_file"]);
});
