// A person's decision as the SDK hands it on: a denial's note (`ActionRejected.note`), and an
// approval of an edited input (`decision.updatedInput`), which only a caller that takes it runs.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ActionRejected, Gatehouse, guarded } from "@gatehouse/sdk";

import { Daemon } from "./daemon.mjs";

let daemon;
before(async () => { daemon = await Daemon.start(); });
after(async () => { await daemon.stop(); });

const client = (sessionId) =>
  new Gatehouse({ url: daemon.url, token: daemon.agentToken, env: {}, pollWaitMs: 1000, sessionId });

test("a denial note reaches ActionRejected", async () => {
  const person = daemon.decideWhenPending("deny", { tool: "send_invoice", session: "ts-note", note: "use the draft folder" });
  await assert.rejects(client("ts-note").require("send_invoice", { to: "a@example.com" }), (err) => {
    assert.ok(err instanceof ActionRejected);
    assert.equal(err.note, "use the draft folder");
    assert.equal(err.decidedBy, "human");
    assert.match(err.message, /use the draft folder/);
    return true;
  });
  await person;
});

test("an edited approval is never run as asked", async () => {
  const edited = { to: "team@example.com" };
  const person = daemon.decideWhenPending("approve", { tool: "send_digest", session: "ts-edit", edited });
  const gate = client("ts-edit");
  const d = await gate.check("send_digest", { to: "everyone@example.com" }, { toolUseId: "ts-digest-1" });
  await person;
  assert.equal(d.verdict, "allow");
  assert.equal(d.allowed, false);
  assert.equal(d.edited, true);
  assert.deepEqual(d.updatedInput, edited);
  // require() rejects it unless the caller says it runs the edited input (a re-sent check re-attaches).
  await assert.rejects(gate.require("send_digest", { to: "everyone@example.com" }, { toolUseId: "ts-digest-1" }),
    (err) => err instanceof ActionRejected && err.reason.includes("team@example.com"));
  const taken = await gate.require("send_digest", { to: "everyone@example.com" }, { toolUseId: "ts-digest-1", acceptEdits: true });
  assert.deepEqual(taken.updatedInput, edited);
});

test("guarded functions run with the edited arguments", async () => {
  const sent = [];
  const sendReport = guarded(async (report) => { sent.push(report); return report.to; },
    { tool: "send_report", client: client("ts-guard") });
  const person = daemon.decideWhenPending("approve", { tool: "send_report", session: "ts-guard", edited: { to: "me@example.com", copies: 1 } });
  assert.equal(await sendReport({ to: "all@example.com", copies: 40 }), "me@example.com");
  await person;
  assert.deepEqual(sent, [{ to: "me@example.com", copies: 1 }]);
});
