// The host behaviours Gatehouse's hooks are built on, measured on the pinned CLIs with plain hooks
// (no Gatehouse involved): which hook failures let the tool run (fail open), which answers block,
// and that the model is told the reason. If a CLI upgrade changes one of these, this file says which
// and the hook design (docs/INTEGRATIONS.md) must be revisited.
//
// The model is fake (a scripted server on loopback, tests/agents/support/fake-model-api.mjs): a
// real model API cannot run here. The CLIs and their hook runners are the real ones from npm.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { scriptPrompt, startFakeModelApi } from "./support/fake-model-api.mjs";
import * as H from "./support/hosts.mjs";

const REASON = "blocked by the facts test hook";

/** Hook bodies (POSIX sh); each reads its stdin first like a real hook. */
const HOOKS = {
  exit1: `cat >/dev/null; echo "hook failed" >&2; exit 1`,
  // exec: one process, as a real hook is; a shell's orphaned child would hold the pipes open.
  slow: `cat >/dev/null; exec sleep 30`,
  exit2Silent: `cat >/dev/null; exit 2`,
  nonJson: `cat >/dev/null; printf 'this is not json'; exit 0`,
  truncatedJson: `cat >/dev/null; printf '{"decision":"bl'; exit 0`,
  // Allows with a rewritten input: the command that runs writes rewritten.txt instead.
  rewrite: `cat >/dev/null; printf '%s' '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"confined","updatedInput":{"command":"echo rewritten > rewritten.txt"}}}'; exit 0`,
  ask: `cat >/dev/null; printf '%s' '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"ask","permissionDecisionReason":"${REASON}"}}'; exit 0`,
  universalDeny: `cat >/dev/null; printf '%s' '{"decision":"block","reason":"${REASON}"}'; echo "${REASON}" >&2; exit 2`,
};

let api;
before(async () => {
  api = await startFakeModelApi();
});
after(async () => {
  await api?.close();
});

/**
 * One headless turn of `host` whose model asks for one shell call writing a marker, with the given
 * pre-tool hook. Returns {ran, told, result}: whether the marker exists and whether a tool result
 * the model saw carries REASON.
 */
async function turn(host, { hook, missing = false, timeoutSec, onFailure, bypassHookTrust = true }) {
  const dirs = H.makeRunDirs(`facts-${host}`);
  try {
    let command;
    if (missing) {
      command = path.join(dirs.root, "no-such-hook.sh");
    } else {
      command = path.join(dirs.root, "hook.sh");
      fs.writeFileSync(command, `#!/bin/sh\n${HOOKS[hook]}\n`, { mode: 0o755 });
    }
    H.configureHost(host, dirs, api.url, { preToolHook: { command, timeoutSec, onFailure } });
    const marker = path.join(dirs.work, "marker.txt");
    const before = api.requests.length;
    // The final text names the run, so requests of runs going on at the same time are told apart.
    const prompt = scriptPrompt({ steps: [{ shell: `echo ran > ${marker}` }], final: `Turn over (${dirs.root}).` });
    const result = await H.runHost(host, dirs, api.url, prompt, { bypassHookTrust });
    const mine = api.requests.slice(before).filter((r) => JSON.stringify(r.body ?? "").includes(prompt.slice(-60)));
    assert.ok(mine.length > 0, `${host} never asked the fake model API:\n${result.stderr.slice(-3000)}`);
    const told = mine.some((r) => JSON.stringify(r.body ?? "").includes(REASON));
    return { ran: fs.existsSync(marker), rewritten: fs.existsSync(path.join(dirs.work, "rewritten.txt")), told, result };
  } finally {
    H.removeRunDirs(dirs);
  }
}

describe("hook failures let the tool run by default (fail open)", { concurrency: 3 }, () => {
  for (const host of H.HOST_NAMES) {
    test(`${host}: a hook that exits 1 lets the tool run`, async () => {
      assert.equal((await turn(host, { hook: "exit1" })).ran, true);
    });
    test(`${host}: a hook that times out lets the tool run`, async () => {
      assert.equal((await turn(host, { hook: "slow", timeoutSec: 2 })).ran, true);
    });
    if (host !== "gemini") {
      test(`${host}: a missing hook lets the tool run`, async () => {
        assert.equal((await turn(host, { missing: true })).ran, true);
      });
    }
  }
  // Differs from issue 10's notes: Gemini runs hooks through `sh -c`, and any exit status other than
  // 0 or 1 with text on stdout or stderr is a deny, so sh's "not found" (exit 127) blocks.
  test("gemini: a missing hook blocks (sh exits 127 with text on stderr)", async () => {
    assert.equal((await turn("gemini", { missing: true })).ran, false);
  });
  test("gemini: exit 2 with an empty stderr lets the tool run", async () => {
    assert.equal((await turn("gemini", { hook: "exit2Silent" })).ran, true);
  });
  test("codex: an untrusted hook is skipped silently (its deny does not block)", async () => {
    const t = await turn("codex", { hook: "universalDeny", bypassHookTrust: false });
    assert.equal(t.ran, true);
    assert.equal(t.told, false);
  });
});

describe("one answer blocks in all three hosts and the model is told why", { concurrency: 3 }, () => {
  for (const host of H.HOST_NAMES) {
    test(`${host}: {"decision":"block","reason":R} + R on stderr + exit 2 blocks`, async () => {
      const t = await turn(host, { hook: "universalDeny" });
      assert.equal(t.ran, false, "the tool ran despite the deny");
      assert.equal(t.told, true, "the model was not told the reason");
    });
  }
});

describe("Claude Code onFailure: block", { concurrency: 3 }, () => {
  test("blocks on exit 1", async () => {
    assert.equal((await turn("claude-code", { hook: "exit1", onFailure: "block" })).ran, false);
  });
  test("blocks on a timeout", async () => {
    assert.equal((await turn("claude-code", { hook: "slow", timeoutSec: 2, onFailure: "block" })).ran, false);
  });
  test("blocks on a missing hook", async () => {
    assert.equal((await turn("claude-code", { missing: true, onFailure: "block" })).ran, false);
  });
  test("does NOT block an exit 0 with non-JSON output (a hook must never print a partial answer)", async () => {
    assert.equal((await turn("claude-code", { hook: "nonJson", onFailure: "block" })).ran, true);
  });
  test("does NOT block an exit 0 with truncated JSON", async () => {
    assert.equal((await turn("claude-code", { hook: "truncatedJson", onFailure: "block" })).ran, true);
  });
});

// Issue 11 confines an allowed shell call by answering with the command rewritten (wrapped in
// `gatehouse sandbox run`); these hosts must run the rewritten command instead of the original.
describe("permissionDecision allow + updatedInput rewrites the command", { concurrency: 2 }, () => {
  for (const host of ["claude-code", "codex"]) {
    test(`${host}: the rewritten command runs, the original does not`, async () => {
      const t = await turn(host, { hook: "rewrite" });
      assert.equal(t.ran, false, "the original command ran");
      assert.equal(t.rewritten, true, `the rewritten command did not run:\n${t.result.stderr.slice(-2000)}`);
    });
  }
});

// `gatehouse install --pause ask` maps a pause to Claude Code's own prompt. Headless (-p) with
// --dangerously-skip-permissions there is no person to ask: measured here, not assumed.
describe("Claude Code permissionDecision: ask, headless", () => {
  test("with --dangerously-skip-permissions in -p mode, the tool does not run", async () => {
    const t = await turn("claude-code", { hook: "ask" });
    assert.equal(t.ran, false, "a hook's ask let the tool run with nobody to ask");
  });
});
