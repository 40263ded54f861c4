// `gatehouse doctor` against real installs in a temporary HOME: healthy after `gatehouse
// install`, and non-zero with the reason when a Codex hook is not trusted (shown to matter with
// the real Codex, which then skips it), when Claude Code's fail-closed option is missing, and
// when the daemon is stopped. The model is a fake API on loopback (support/fake-model-api.mjs).

import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { gatehouse, startDaemon, stopDaemon } from "./support/daemon.mjs";
import { scriptPrompt, startFakeModelApi } from "./support/fake-model-api.mjs";
import * as H from "./support/hosts.mjs";
import { POLICY } from "./support/scenarios.mjs";

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

async function installed(host, d = daemon) {
  const dirs = H.makeRunDirs(`doctor-${host}`);
  runs.push(dirs);
  H.configureHost(host, dirs, api.url);
  const r = await gatehouse(dirs, ["install", host, "--url", d.baseUrl, "--data-dir", d.dataDir]);
  assert.equal(r.code, 0, `gatehouse install ${host}:\n${r.stdout}\n${r.stderr}`);
  return dirs;
}

async function doctor(dirs, d = daemon) {
  const r = await gatehouse(dirs, ["doctor", "--url", d.baseUrl, "--data-dir", d.dataDir], { timeoutMs: 90_000 });
  return { ...r, text: `${r.stdout}\n${r.stderr}` };
}

/** Removes every `[hooks.state."…"]` table (Codex's trust records) from a config.toml. */
function withoutTrust(toml) {
  const out = [];
  let skipping = false;
  for (const line of toml.split("\n")) {
    if (/^\s*\[/.test(line)) skipping = /^\s*\[hooks\.state[.\]]/.test(line);
    if (!skipping) out.push(line);
  }
  return out.join("\n");
}

/** Removes every `onFailure` key from Claude Code's settings. */
function withoutOnFailure(value) {
  if (Array.isArray(value)) return value.map(withoutOnFailure);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== "onFailure").map(([k, v]) => [k, withoutOnFailure(v)]));
  }
  return value;
}

describe("gatehouse doctor", { concurrency: 3 }, () => {
  for (const host of H.HOST_NAMES) {
    test(`${host}: a fresh install with the daemon up is healthy (exit 0)`, async () => {
      const dirs = await installed(host);
      const r = await doctor(dirs);
      assert.equal(r.code, 0, `doctor flagged a fresh install:\n${r.text}`);
    });
  }

  test("codex: a hook Codex does not trust is reported (exit non-zero), and Codex really skips it", async () => {
    const dirs = await installed("codex");
    const config = H.settingsPath("codex", dirs);
    const trusted = fs.readFileSync(config, "utf8");
    assert.match(trusted, /\[hooks\.state\./, "install recorded no Codex trust");
    fs.writeFileSync(config, withoutTrust(trusted));
    const r = await doctor(dirs);
    assert.notEqual(r.code, 0, `doctor passed an untrusted Codex hook:\n${r.text}`);
    assert.match(r.text, /trust/i, r.text);
    // What doctor warns about: the real Codex runs a call the policy rejects, hook skipped.
    const marker = "rejected-untrusted.marker";
    await H.runHost("codex", dirs, api.url, scriptPrompt({ steps: [{ shell: `touch ${marker}` }], final: "done" }));
    assert.equal(fs.existsSync(`${dirs.work}/${marker}`), true, "an untrusted hook still ran: this test no longer shows what doctor guards against");
  });

  // Found by this test (0.169.0): Codex loads a project's .codex/config.toml only when the project
  // itself is trusted ([projects."<dir>"] trust_level), so `install --scope project` into an
  // untrusted project protects nothing, yet doctor said "every installed host is guarded".
  test("codex --scope project in a project Codex does not trust: the real Codex skips the hooks, and doctor must say so", async () => {
    const dirs = H.makeRunDirs("doctor-codex-project");
    runs.push(dirs);
    H.configureHost("codex", dirs, api.url);
    const r = await gatehouse(dirs, ["install", "codex", "--scope", "project", "--url", daemon.baseUrl, "--data-dir", daemon.dataDir]);
    assert.equal(r.code, 0, `gatehouse install codex --scope project:\n${r.stdout}\n${r.stderr}`);
    const marker = "rejected-untrusted-project.marker";
    await H.runHost("codex", dirs, api.url, scriptPrompt({ steps: [{ shell: `touch ${marker}` }], final: "done" }));
    assert.equal(fs.existsSync(`${dirs.work}/${marker}`), true, "Codex now loads an untrusted project's hooks: this test no longer shows the gap");
    const d = await gatehouse(dirs, ["doctor", "--url", daemon.baseUrl, "--data-dir", daemon.dataDir, "--project", dirs.work], { timeoutMs: 90_000 });
    assert.notEqual(d.code, 0, `doctor passed a Codex project whose hooks Codex does not load:\n${d.stdout}\n${d.stderr}`);
    assert.match(`${d.stdout}\n${d.stderr}`, /trust/i);
  });

  test("claude-code: a hook without onFailure: block is reported (exit non-zero)", async () => {
    const dirs = await installed("claude-code");
    const settings = H.settingsPath("claude-code", dirs);
    const parsed = JSON.parse(fs.readFileSync(settings, "utf8"));
    assert.match(JSON.stringify(parsed), /"onFailure":"block"/, "install did not set onFailure: block");
    fs.writeFileSync(settings, `${JSON.stringify(withoutOnFailure(parsed), null, 2)}\n`);
    const r = await doctor(dirs);
    assert.notEqual(r.code, 0, `doctor passed a Claude Code hook that fails open:\n${r.text}`);
    assert.match(r.text, /onFailure|fail.closed/i, r.text);
  });

  test("a stopped daemon is reported (exit non-zero)", async () => {
    const gone = await startDaemon({ policy: POLICY });
    try {
      const dirs = await installed("claude-code", gone);
      await stopDaemon(gone, { remove: false });
      const r = await doctor(dirs, gone);
      assert.notEqual(r.code, 0, `doctor passed with the daemon stopped:\n${r.text}`);
      assert.match(r.text, /daemon|reach|connect|refused/i, r.text);
    } finally {
      await stopDaemon(gone);
    }
  });
});
