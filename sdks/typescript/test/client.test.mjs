// The TypeScript client against the real daemon (and fake broken daemons on loopback).

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  ActionRejected,
  Gatehouse,
  GatehouseApiError,
  GatehouseConfigError,
  GatehouseTimeout,
  GatehouseUnavailable,
  guarded,
} from "@gatehouse/sdk";

import { Daemon, droppingProxy, fakeServer, freePort } from "./daemon.mjs";

let daemon;
before(async () => { daemon = await Daemon.start(); });
after(async () => { await daemon.stop(); });

const client = (opts = {}) => new Gatehouse({ url: daemon.url, token: daemon.agentToken, env: {}, ...opts });

test("allow", async () => {
  const d = await client().check("get_weather", { city: "Lisbon" });
  assert.equal(d.verdict, "allow");
  assert.ok(d.allowed);
  assert.equal(d.decidedBy, "rule");
  assert.equal(d.ruleId, "allow-safe");
  assert.match(d.actionId, /^act_/);
});

test("reject with reason", async () => {
  const gate = client();
  const d = await gate.check("delete_file", { path: "/etc/passwd" });
  assert.equal(d.verdict, "reject");
  assert.equal(d.reason, "deleting files is not allowed here");
  await assert.rejects(gate.require("delete_file", { path: "/etc/passwd" }), (err) => {
    assert.ok(err instanceof ActionRejected);
    assert.equal(err.reason, "deleting files is not allowed here");
    assert.match(err.actionId, /^act_/);
    assert.equal(err.ruleId, "no-delete");
    return true;
  });
});

test("pause, approve through the API, returns allow", async () => {
  const [d] = await Promise.all([
    client({ pollWaitMs: 1000, sessionId: "sess-pause-approve" }).check("send_email", { to: "a@example.com" }),
    daemon.decideWhenPending("approve", { tool: "send_email", session: "sess-pause-approve" }),
  ]);
  assert.equal(d.verdict, "allow");
  assert.equal(d.decidedBy, "human");
});

test("pause, deny", async () => {
  const [outcome] = await Promise.allSettled([
    client().require("send_sms", { to: "+351" }),
    daemon.decideWhenPending("deny", { tool: "send_sms", note: "not today" }),
  ]);
  assert.equal(outcome.status, "rejected");
  assert.ok(outcome.reason instanceof ActionRejected);
  assert.equal(outcome.reason.decidedBy, "human");
  assert.match(outcome.reason.reason, /not today/);
});

test("wait: false answers pending; poll and a re-sent check follow the same action", async () => {
  const gate = client();
  const first = await gate.check("send_fax", { n: 1 }, { toolUseId: "fax-1", wait: false });
  assert.equal(first.verdict, "pending");
  assert.equal((await gate.poll(first.actionId, 0)).verdict, "pending");
  await daemon.decide(await daemon.pendingFor({ toolUseId: "fax-1" }), "approve");
  assert.equal((await gate.poll(first.actionId, 5000)).verdict, "allow");
  const again = await gate.check("send_fax", { n: 1 }, { toolUseId: "fax-1" });
  assert.equal(again.actionId, first.actionId);
  assert.ok(again.allowed);
});

test("the daemon's deadline rejects", async () => {
  const short = await Daemon.start({ deadlineMs: 800 });
  try {
    const gate = new Gatehouse({ url: short.url, token: short.agentToken, env: {}, pollWaitMs: 300 });
    const d = await gate.check("send_letter", { to: "x" });
    assert.equal(d.verdict, "reject");
    assert.equal(d.decidedBy, "timeout");
  } finally {
    await short.stop();
  }
});

test("still pending at the client's deadline is an error", async () => {
  await assert.rejects(client({ pollWaitMs: 200 }).check("send_pigeon", { to: "x" }, { wait: 600 }), GatehouseTimeout);
});

test("daemon down is an error, never an allow", async () => {
  const gate = new Gatehouse({ url: `http://127.0.0.1:${await freePort()}`, token: "t", env: {} });
  await assert.rejects(gate.check("get_weather", {}), GatehouseUnavailable);
});

for (const mode of ["garbage", "html"]) {
  test(`daemon answering ${mode} is an error`, async () => {
    const fake = await fakeServer(mode); // a fake daemon: the real one never answers like this
    try {
      await assert.rejects(new Gatehouse({ url: fake.url, token: "t", env: {} }).check("get_weather", {}), GatehouseUnavailable);
    } finally {
      fake.stop();
    }
  });
}

test("daemon hanging is a timeout", async () => {
  const fake = await fakeServer("hang"); // a fake daemon that accepts and never answers
  try {
    const gate = new Gatehouse({ url: fake.url, token: "t", env: {}, requestTimeoutMs: 500 });
    await assert.rejects(gate.check("get_weather", {}, { wait: 800 }), GatehouseTimeout);
  } finally {
    fake.stop();
  }
});

test("an error status is an API error with code and field", async () => {
  await assert.rejects(new Gatehouse({ url: daemon.url, token: "0".repeat(64), env: {} }).check("add", {}), (err) => {
    assert.ok(err instanceof GatehouseApiError);
    assert.equal(err.status, 401);
    assert.equal(err.code, "unauthorized");
    return true;
  });
  await assert.rejects(client().check("add", {}, { sessionId: "s".repeat(600) }), (err) => {
    assert.ok(err instanceof GatehouseApiError);
    assert.equal(err.status, 400);
    assert.equal(err.field, "session_id");
    return true;
  });
});

test("re-attach after a dropped connection", async () => {
  const proxy = await droppingProxy(daemon.port, { drops: 1, afterMs: 300 });
  try {
    const gate = new Gatehouse({ url: `http://127.0.0.1:${proxy.port}`, token: daemon.agentToken, env: {}, sessionId: "sess-reattach-ts" });
    const [d] = await Promise.all([
      gate.check("send_parcel", { to: "Porto" }, { toolUseId: "call-drop-1" }),
      // The person decides only once the first connection was cut, mid-wait.
      proxy.state.cut.then(() => daemon.decideWhenPending("approve", { tool: "send_parcel" })),
    ]);
    gate.close();
    assert.equal(proxy.state.dropped, 1);
    assert.ok(d.allowed);
    assert.equal(d.decidedBy, "human");
    const recorded = (await daemon.actions()).filter((a) => a.session_id === "sess-reattach-ts");
    assert.equal(recorded.length, 1, "the re-sent check attached to the same action");
  } finally {
    proxy.stop();
  }
});

test("unix socket (hardened mode)", async () => {
  const d = await Daemon.start({ socket: true });
  try {
    const gate = new Gatehouse({ url: `unix:${d.socket}`, token: "", env: {} });
    assert.ok((await gate.check("get_weather", {})).allowed);
    assert.equal((await gate.check("delete_x", {})).verdict, "reject");
    gate.close();
  } finally {
    await d.stop();
  }
});

test("configuration order: arguments, environment, data directory", async () => {
  const home = daemon.dir;
  assert.throws(() => new Gatehouse({ env: { HOME: join(home, "nowhere") } }), GatehouseConfigError);
  mkdirSync(join(home, "xdg", "gatehouse"), { recursive: true });
  writeFileSync(join(home, "xdg", "gatehouse", "agent.token"), `${daemon.agentToken}\n`);
  const env = { HOME: home, GATEHOUSE_URL: daemon.url, XDG_DATA_HOME: join(home, "xdg") };
  assert.ok((await new Gatehouse({ env }).check("add", {})).allowed);
  assert.ok((await new Gatehouse({ env: { ...env, GATEHOUSE_DATA_DIR: daemon.data } }).check("add", {})).allowed);
  await assert.rejects(new Gatehouse({ env: { ...env, GATEHOUSE_TOKEN: "f".repeat(64) } }).check("add", {}), GatehouseApiError);
  assert.ok((await new Gatehouse({ env: { ...env, GATEHOUSE_TOKEN: "f".repeat(64) }, token: daemon.agentToken }).check("add", {})).allowed);
  const down = { ...env, GATEHOUSE_URL: `http://127.0.0.1:${await freePort()}` };
  await assert.rejects(new Gatehouse({ env: down }).check("add", {}), GatehouseUnavailable);
  assert.ok((await new Gatehouse({ env: down, url: daemon.url }).check("add", {})).allowed);
  for (const bad of ["https://127.0.0.1:7400", "http://u:p@127.0.0.1:7400", "unix:", "http://127.0.0.1:7400/?x=1"]) {
    assert.throws(() => new Gatehouse({ url: bad, token: "t", env: {} }), GatehouseConfigError, bad);
  }
});

test("guarded() runs the function only on allow", async () => {
  const gate = client();
  const ran = [];
  const add = guarded(async ({ a, b }) => { ran.push("add"); return a + b; }, { tool: "guarded_add", client: gate });
  const deleteEverything = guarded(function delete_everything(path) { ran.push("delete"); return path; }, { client: gate });
  assert.equal(await add({ a: 1, b: 2 }), 3);
  await assert.rejects(deleteEverything("/"), (err) => err instanceof ActionRejected && err.reason === "deleting files is not allowed here");
  const down = new Gatehouse({ url: `http://127.0.0.1:${await freePort()}`, token: "t", env: {} });
  const never = guarded(() => { ran.push("never"); }, { tool: "guarded_add", client: down });
  await assert.rejects(never(), GatehouseUnavailable);
  assert.deepEqual(ran, ["add"]);
});
