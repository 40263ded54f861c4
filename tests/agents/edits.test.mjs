// Edit then approve and deny with guidance, end to end with the real agent CLIs (pinned in
// package-lock.json) through `gatehouse hook` and the real daemon; only the model is a fake API on
// loopback (a real one cannot run here). A paused `touch paused-*.marker` is approved with an
// edited command: Claude Code and Codex run the edited command (their hooks' `updatedInput`), never
// the original; Gemini CLI cannot take an edited input, so the call does not run and the model is
// told the edited call. A denial's note reaches the model.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { daemonApi, decide, gatehouse, openEvents, startDaemon, stopDaemon } from "./support/daemon.mjs";
import { scriptPrompt, startFakeModelApi } from "./support/fake-model-api.mjs";
import * as H from "./support/hosts.mjs";
import { POLICY } from "./support/scenarios.mjs";

describe("edit then approve, deny with guidance: real agent CLIs", { concurrency: 3 }, () => {
  let api;
  let daemon;
  const runs = [];

  before(async () => {
    api = await startFakeModelApi();
    daemon = await startDaemon({ policy: POLICY });
  });
  after(async () => {
    await api?.close();
    await stopDaemon(daemon);
    for (const dirs of runs) H.removeRunDirs(dirs);
  });

  async function installed(host, label) {
    const dirs = H.makeRunDirs(`${host}-${label}`);
    runs.push(dirs);
    H.configureHost(host, dirs, api.url);
    const r = await gatehouse(dirs, ["install", host, "--url", daemon.baseUrl, "--data-dir", daemon.dataDir, "--wait", "20"]);
    assert.equal(r.code, 0, `gatehouse install ${host} failed:\n${r.stdout}\n${r.stderr}`);
    return dirs;
  }

  /** Runs one turn asking for `touch <marker>`; `person` answers its pause. */
  async function pausedTurn(host, dirs, marker, person) {
    const events = openEvents(daemon);
    try {
      await events.opened;
      const first = api.requests.length;
      const prompt = scriptPrompt({ steps: [{ shell: `touch ${marker}` }], final: `Turn over (${marker}).` });
      const turn = H.runHost(host, dirs, api.url, prompt, { timeoutMs: 150_000, env: {} });
      const pending = await events.next((e) => e.type === "action.pending" && JSON.stringify(e.action.input).includes(marker), 90_000);
      const decided = await person(pending.action);
      const result = await turn;
      const seen = JSON.stringify(api.requests.slice(first).map((r) => r.body));
      return {
        decided,
        modelSaw: (text) => seen.includes(JSON.stringify(text).slice(1, -1)),
        describe: () => `exit ${result.code}\n--- stderr\n${result.stderr.slice(-3000)}\n--- daemon\n${daemon.output.slice(-20).join("\n")}`,
      };
    } finally {
      events.close();
    }
  }

  /** The person edits the shell command (`command` field) and approves the edit. */
  async function approveEdited(action, command) {
    const input = { ...action.input, command };
    const r = await daemonApi(daemon, "POST", `/v1/actions/${action.action_id}/decision`, {
      decision: "approve",
      action_hash: action.action_hash,
      input,
      note: "only the edited file",
    });
    assert.equal(r.status, 200, r.text);
    return r.json;
  }

  for (const host of ["claude-code", "codex"]) {
    // Each host has its own markers: the two run at once against one daemon, and each turn's pause
    // is found by its marker.
    test(`${host}: an approved edit runs the edited command, never the original`, async () => {
      const dirs = await installed(host, "edit");
      const original = `paused-original-${host}.marker`;
      const edited = `paused-edited-${host}.marker`;
      const t = await pausedTurn(host, dirs, original, (action) =>
        approveEdited(action, `touch ${edited}`));
      assert.equal(t.decided.decision.edit.edited_input.command, `touch ${edited}`);
      assert.equal(fs.existsSync(path.join(dirs.work, original)), false, `the original ran\n${t.describe()}`);
      assert.equal(fs.existsSync(path.join(dirs.work, edited)), true, `the edited command did not run\n${t.describe()}`);
    });
  }

  test("gemini: an approved edit cannot be substituted, so nothing runs and the model is told the edited call", async () => {
    const dirs = await installed("gemini", "edit");
    const t = await pausedTurn("gemini", dirs, "paused-gemini.marker", (action) =>
      approveEdited(action, "touch paused-gemini-edited.marker"));
    assert.equal(fs.existsSync(path.join(dirs.work, "paused-gemini.marker")), false, `the original ran\n${t.describe()}`);
    assert.equal(fs.existsSync(path.join(dirs.work, "paused-gemini-edited.marker")), false, `the edit ran\n${t.describe()}`);
    assert.ok(t.modelSaw("paused-gemini-edited.marker"), `the model was not told the edited call\n${t.describe()}`);
  });

  test("claude-code: a denial's note reaches the model", async () => {
    const dirs = await installed("claude-code", "note");
    const t = await pausedTurn("claude-code", dirs, "paused-noted.marker", (action) =>
      decide(daemon, action, "deny", "use the scratch directory instead"));
    assert.equal(fs.existsSync(path.join(dirs.work, "paused-noted.marker")), false, `a denied call ran\n${t.describe()}`);
    assert.ok(t.modelSaw("use the scratch directory instead"), `the model was not told the note\n${t.describe()}`);
  });
});
