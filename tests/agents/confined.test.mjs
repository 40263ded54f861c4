// Issue 11 end to end: an allowed `npm test` through a real agent CLI runs confined by the real
// sandbox (`gatehouse sandbox run`, Landlock + namespaces + seccomp). The fixture project's test
// (fixtures/confined-npm) tries to read a fake SSH key planted in the temporary HOME; the read
// must fail, the model must never see the key, and the outcome must record the denial.
//
// 1. host + sandbox: the real CLI's hook answers as `gatehouse hook` does for an allowed,
//    confined call (the command rewritten into `gatehouse sandbox run --profile build …`,
//    crates/gatehouse-hosts/src/confine.rs), so the real CLI runs the real sandbox.
// 2. the full path: policy `confine = "build"` → daemon → `gatehouse hook` → rewritten command →
//    sandbox → outcome in the ledger, with the sandbox's denial among the outcome's findings.
//
// The model is a fake API on loopback (support/fake-model-api.mjs); everything else is real.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { daemonApi, gatehouse, listActions, requireGatehouseBin, startDaemon, stopDaemon } from "./support/daemon.mjs";
import { scriptPrompt, startFakeModelApi } from "./support/fake-model-api.mjs";
import * as H from "./support/hosts.mjs";

const FIXTURE = path.join(H.AGENTS_DIR, "fixtures", "confined-npm");
const SECRET = "FAKE-SSH-KEY-do-not-leak-7f3a";

const POLICY = `
default = "pause"

[[rules]]
id = "e2e-npm-test-confined"
effect = "allow"
reason = "the project's tests may run, confined"
confine = "build"
command = { program = "npm", args_prefix = ["test"] }
`;

let api;
const runs = [];
before(async () => {
  api = await startFakeModelApi();
});
after(async () => {
  await api?.close();
  for (const dirs of runs) H.removeRunDirs(dirs);
});

/** A HOME with a planted key and a copy of the fixture project as the working directory. */
function project(label) {
  const dirs = H.makeRunDirs(`confined-${label}`);
  runs.push(dirs);
  fs.mkdirSync(path.join(dirs.home, ".ssh"), { mode: 0o700 });
  fs.writeFileSync(path.join(dirs.home, ".ssh", "id_rsa"), `${SECRET}\n`, { mode: 0o600 });
  for (const f of fs.readdirSync(FIXTURE)) fs.copyFileSync(path.join(FIXTURE, f), path.join(dirs.work, f));
  return dirs;
}

/** Runs one turn asking for `npm test`; what ran, what leaked, what the model saw. */
async function npmTestTurn(host, dirs, { bypassHookTrust = false } = {}) {
  const first = api.requests.length;
  // The final text names the run, so requests of runs going on at the same time are told apart.
  const prompt = scriptPrompt({ steps: [{ shell: "npm test" }], final: `Tests done (${dirs.root}).` });
  const result = await H.runHost(host, dirs, api.url, prompt, { bypassHookTrust, timeoutMs: 150_000 });
  const mine = api.requests.slice(first).filter((r) => JSON.stringify(r.body ?? "").includes(prompt.slice(-60)));
  assert.ok(mine.length > 0, `${host} never reached the fake model API:\n${result.stderr.slice(-3000)}`);
  const seen = JSON.stringify(mine.map((r) => r.body));
  return {
    result,
    testRan: fs.existsSync(path.join(dirs.work, "test-ran.txt")),
    leaked: fs.existsSync(path.join(dirs.work, "leaked.txt")),
    modelSawSecret: seen.includes(SECRET),
    modelSawDenied: /could not read [^"]*id_rsa: EACCES/.test(seen),
    describe: () => `exit ${result.code}\n--- stdout\n${result.stdout.slice(-2000)}\n--- stderr\n${result.stderr.slice(-3000)}`,
  };
}

function quote(word) {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

describe("host + sandbox: a confined npm test through the real CLI", { concurrency: 2 }, () => {
  for (const host of ["claude-code", "codex"]) {
    test(`${host}: the test runs, the planted key cannot be read, the model never sees it`, async () => {
      const bin = requireGatehouseBin();
      const dirs = project(`rewrite-${host}`);
      // What `gatehouse hook` answers for an allowed call the daemon says to confine.
      const confined = `${quote(bin)} sandbox run --profile build --cwd ${quote(dirs.work)} -- /bin/sh -c ${quote("npm test")}`;
      const answer = JSON.stringify({
        hookSpecificOutput: {
          hookEventName: "PreToolUse",
          permissionDecision: "allow",
          permissionDecisionReason: "Gatehouse: allowed, confined by the sandbox",
          updatedInput: { command: confined },
        },
      });
      const hook = path.join(dirs.root, "confine-hook.sh");
      fs.writeFileSync(hook, `#!/bin/sh\ncat >/dev/null\nprintf '%s' ${quote(answer)}\n`, { mode: 0o755 });
      H.configureHost(host, dirs, api.url, { preToolHook: { command: hook } });
      // Without the rewrite the key is readable: the sandbox is what stops it.
      assert.equal(fs.readFileSync(path.join(dirs.home, ".ssh", "id_rsa"), "utf8").trim(), SECRET);
      // A plain hook is not trusted by Codex: bypass trust for this invocation (Gatehouse's own
      // install records trust; the e2e scenarios cover that).
      const t = await npmTestTurn(host, dirs, { bypassHookTrust: true });
      assert.equal(t.testRan, true, `npm test did not run inside the sandbox\n${t.describe()}`);
      assert.equal(t.leaked, false, `the test read the key\n${t.describe()}`);
      assert.equal(t.modelSawSecret, false, "the model saw the key");
      assert.equal(t.modelSawDenied, true, `the model was not shown the failed read\n${t.describe()}`);
    });
  }
});

describe("the full path: policy confine → daemon → gatehouse hook → sandbox → outcome", () => {
  let daemon;
  before(async () => {
    daemon = await startDaemon({ policy: POLICY });
  });
  after(async () => {
    await stopDaemon(daemon);
  });

  for (const host of ["claude-code", "codex"]) {
    test(`${host}: allowed npm test runs confined; the denied read is in the outcome`, async () => {
      const dirs = project(`full-${host}`);
      H.configureHost(host, dirs, api.url);
      const r = await gatehouse(dirs, ["install", host, "--url", daemon.baseUrl, "--data-dir", daemon.dataDir, "--wait", "20"]);
      assert.equal(r.code, 0, `gatehouse install ${host}:\n${r.stdout}\n${r.stderr}`);
      const t = await npmTestTurn(host, dirs);
      assert.equal(t.testRan, true, `npm test did not run\n${t.describe()}`);
      assert.equal(t.leaked, false, `the test read the key\n${t.describe()}`);
      assert.equal(t.modelSawSecret, false, "the model saw the key");
      const action = (await listActions(daemon)).find((a) => a.session_id && JSON.stringify(a.input).includes("npm test") && fs.realpathSync(a.cwd) === fs.realpathSync(dirs.work));
      assert.ok(action, "no action recorded for npm test");
      assert.equal(action.verdict, "allow");
      // Recorded today in the reason ("runs confined: sandbox profile build"); a field also counts.
      assert.match(JSON.stringify(action), /profile build|"build"/, `the confinement is not recorded with the action: ${JSON.stringify(action)}`);
      const outcomes = await daemonApi(daemon, "GET", "/v1/outcomes");
      const mine = outcomes.json.outcomes.filter((o) => o.action_id === action.action_id);
      assert.equal(mine.length, 1, outcomes.text.slice(0, 2000));
      assert.ok(mine[0].findings.some((f) => f.includes(".ssh/id_rsa")), `the denied read is not in the outcome: ${JSON.stringify(mine[0])}`);
    });
  }

  test("gemini (cannot rewrite input): the confined rule's fallback applies — npm test does not run unconfined", async () => {
    const dirs = project("full-gemini");
    H.configureHost("gemini", dirs, api.url);
    const r = await gatehouse(dirs, ["install", "gemini", "--url", daemon.baseUrl, "--data-dir", daemon.dataDir, "--wait", "5"]);
    assert.equal(r.code, 0, `gatehouse install gemini:\n${r.stdout}\n${r.stderr}`);
    const t = await npmTestTurn("gemini", dirs);
    assert.equal(t.testRan, false, `npm test ran unconfined on a host that cannot rewrite\n${t.describe()}`);
    assert.equal(t.leaked, false);
    const action = (await listActions(daemon)).find((a) => JSON.stringify(a.input).includes("npm test") && a.agent === "gemini");
    assert.ok(action, "no action recorded for gemini's npm test");
    assert.notEqual(action.verdict, "allow", JSON.stringify(action));
  });
});
