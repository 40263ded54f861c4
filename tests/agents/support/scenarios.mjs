// The end-to-end scenarios of issue 10, defined once and run per host by <host>.test.mjs: a real
// agent CLI, installed with `gatehouse install <host>` into a temporary HOME, asks the real
// daemon (GATEHOUSE_BIN) through `gatehouse hook`; only the model is fake (loopback).
//
// Each scenario's scripted model asks for ONE shell call, `touch <marker>` in the project
// directory, then ends; the marker exists iff the tool ran. The policy below decides by the
// marker's name: allowed-* is allowed, rejected-* is rejected, anything else pauses.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  actionHistory,
  daemonApi,
  decide,
  gatehouse,
  listActions,
  openEvents,
  startDaemon,
  startHangingServer,
  stopDaemon,
} from "./daemon.mjs";
import { scriptPrompt, startFakeModelApi } from "./fake-model-api.mjs";
import * as H from "./hosts.mjs";

export const REJECT_REASON = "E2E-REJECT: files named rejected-* are off limits";

export const POLICY = `
default = "pause"

[[rules]]
id = "e2e-allow-touch"
effect = "allow"
reason = "touching allowed-* files is fine"
command = { program = "touch", args_prefix = ["allowed-*"] }

[[rules]]
id = "e2e-allow-subagents"
effect = "allow"
reason = "Claude Code may start a subagent (its calls are checked one by one)"
tool = ["Agent", "Task"]

[[rules]]
id = "e2e-reject-touch"
effect = "reject"
reason = "${REJECT_REASON}"
command = { program = "touch", args_prefix = ["rejected-*"] }
`;

/** How long the hook waits for a person in these tests (the host's timeout is set above it). */
const WAIT_SECS = 20;

/**
 * `transport`: "command" (`gatehouse hook` per tool call) or, for Claude Code, "http" (Claude Code
 * posts to /v1/hooks/claude-code with GATEHOUSE_TOKEN from its environment).
 */
export function defineHostScenarios(host, { transport = "command" } = {}) {
  const title = transport === "command" ? host : `${host} (${transport} hook)`;
  describe(`${title}: the real CLI with Gatehouse installed`, { concurrency: 2 }, () => {
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

    /** A fresh HOME with the host's offline settings, then `gatehouse install <host>`. */
    async function installed(label, { url = daemon.baseUrl, dataDir = daemon.dataDir, wait = WAIT_SECS } = {}) {
      const dirs = H.makeRunDirs(`${host}-${label}`);
      runs.push(dirs);
      if (dataDir === "own") {
        dataDir = path.join(dirs.root, "gatehouse-data");
        fs.mkdirSync(dataDir, { mode: 0o700 });
      }
      H.configureHost(host, dirs, api.url);
      const settings = H.settingsPath(host, dirs);
      const original = fs.readFileSync(settings);
      const r = await gatehouse(dirs, ["install", host, "--url", url, "--data-dir", dataDir, "--wait", String(wait), "--transport", transport]);
      assert.equal(r.code, 0, `gatehouse install ${host} failed:\n${r.stdout}\n${r.stderr}`);
      // The http hook sends the agent token from Claude Code's environment.
      const tokenFile = path.join(dataDir, "agent.token");
      dirs.env = transport === "http" && fs.existsSync(tokenFile) ? { GATEHOUSE_TOKEN: fs.readFileSync(tokenFile, "utf8").trim() } : {};
      return { dirs, settings, original, dataDir, installOutput: r.stdout };
    }

    /** One agent turn whose model asks for `touch <marker>`; what ran and what the model saw. */
    async function agentTurn(dirs, marker, { timeoutMs = 150_000 } = {}) {
      const first = api.requests.length;
      const prompt = scriptPrompt({ steps: [{ shell: `touch ${marker}` }], final: `Turn over (${marker}).` });
      const result = await H.runHost(host, dirs, api.url, prompt, { timeoutMs, env: dirs.env });
      const mine = api.requests.slice(first).filter((r) => JSON.stringify(r.body ?? "").includes(prompt.slice(-60)));
      assert.ok(mine.length > 0, `${host} never reached the fake model API (exit ${result.code}):\n${result.stderr.slice(-3000)}`);
      if (host === "codex") assert.match(result.stderr, new RegExp(`provider: ${H.CODEX_PROVIDER}`), "Codex did not use the fake provider");
      const seen = JSON.stringify(mine.map((r) => r.body));
      return {
        result,
        ran: fs.existsSync(path.join(dirs.work, marker)),
        modelSaw: (text) => seen.includes(JSON.stringify(text).slice(1, -1)),
        describe: () => `exit ${result.code} in ${result.ms} ms\n--- stdout\n${result.stdout.slice(-2000)}\n--- stderr\n${result.stderr.slice(-3000)}\n--- daemon\n${daemon.output.slice(-20).join("\n")}`,
      };
    }

    async function actionFor(marker) {
      const actions = await listActions(daemon);
      return actions.filter((a) => JSON.stringify(a.input).includes(marker));
    }

    test("an allowed call runs, is recorded once with the host's ids, and its outcome is recorded", async () => {
      const { dirs } = await installed("allow");
      const marker = "allowed-1.marker";
      const t = await agentTurn(dirs, marker);
      assert.equal(t.ran, true, `the allowed call did not run\n${t.describe()}`);
      const actions = await actionFor(marker);
      assert.equal(actions.length, 1, `expected one action for ${marker}, got ${JSON.stringify(actions)}`);
      const [a] = actions;
      assert.equal(a.verdict, "allow");
      assert.equal(a.rule_id, "e2e-allow-touch");
      assert.equal(a.agent, host);
      assert.ok(a.session_id, "no session_id recorded");
      assert.ok(a.tool_use_id, "no tool_use_id recorded (derived where the host sends none)");
      assert.equal(fs.realpathSync(a.cwd), fs.realpathSync(dirs.work));
      const outcomes = await daemonApi(daemon, "GET", "/v1/outcomes");
      assert.equal(outcomes.status, 200, outcomes.text);
      const mine = outcomes.json.outcomes.filter((o) => o.action_id === a.action_id);
      assert.equal(mine.length, 1, `expected one outcome for ${a.action_id}: ${outcomes.text.slice(0, 2000)}`);
      assert.equal(mine[0].ran, true);
      assert.equal(mine[0].flag, null);
    });

    test("a rejected call does not run, and the model is told why", async () => {
      const { dirs } = await installed("reject");
      const marker = "rejected-1.marker";
      const t = await agentTurn(dirs, marker);
      assert.equal(t.ran, false, `the rejected call ran\n${t.describe()}`);
      assert.ok(t.modelSaw(REJECT_REASON), `the model was not told the reason\n${t.describe()}`);
      const [a] = await actionFor(marker);
      assert.equal(a?.verdict, "reject");
      assert.equal(a.rule_id, "e2e-reject-touch");
    });

    if (host === "claude-code") {
      test("a subagent's call is checked too, and recorded with the subagent's identity", async () => {
        const { dirs } = await installed("subagent");
        const marker = "rejected-subagent.marker";
        const sub = scriptPrompt({ steps: [{ shell: `touch ${marker}` }], final: "Subagent done." });
        const first = api.requests.length;
        const prompt = scriptPrompt({ steps: [{ task: { prompt: sub } }], final: `Turn over (${marker}).` });
        const result = await H.runHost(host, dirs, api.url, prompt, { env: dirs.env, timeoutMs: 150_000 });
        // The subagent's own conversation starts with its prompt as the user's message.
        const subagentAsked = api.requests.slice(first).some((r) => r.body?.messages?.[0]?.role === "user" && JSON.stringify(r.body.messages[0]).includes(sub.slice(-60)));
        assert.ok(subagentAsked, `the subagent never started (exit ${result.code}):\n${result.stderr.slice(-3000)}`);
        assert.equal(fs.existsSync(path.join(dirs.work, marker)), false, "the subagent's rejected call ran");
        const [a] = await actionFor(marker);
        assert.equal(a?.verdict, "reject", `no rejected action for the subagent's call: ${JSON.stringify(a)}`);
        assert.match(JSON.stringify(a), /general-purpose/, `the subagent's type is not recorded: ${JSON.stringify(a)}`);
      });
    }

    if (host === "claude-code" && transport === "command") {
      test("a call that went around the check (PreToolUse hook removed by hand) is flagged in the outcomes", async () => {
        const { dirs, settings } = await installed("bypassed");
        const parsed = JSON.parse(fs.readFileSync(settings, "utf8"));
        assert.ok(parsed.hooks?.PreToolUse && parsed.hooks?.PostToolUse, JSON.stringify(parsed));
        delete parsed.hooks.PreToolUse;
        fs.writeFileSync(settings, JSON.stringify(parsed, null, 2));
        const marker = "rejected-bypassed.marker";
        const t = await agentTurn(dirs, marker);
        assert.equal(t.ran, true, `with no PreToolUse hook the call should have run\n${t.describe()}`);
        assert.equal((await actionFor(marker)).length, 0, "a check was made though the hook was removed");
        const outcomes = await daemonApi(daemon, "GET", "/v1/outcomes");
        assert.equal(outcomes.status, 200, outcomes.text);
        const mine = outcomes.json.outcomes.filter((o) => fs.realpathSync(o.cwd ?? "/") === fs.realpathSync(dirs.work));
        assert.equal(mine.length, 1, `expected one outcome from this run: ${outcomes.text.slice(0, 2000)}`);
        assert.equal(mine[0].action_id, null);
        assert.equal(mine[0].flag, "unchecked");
      });
    }

    if (host === "claude-code" && transport === "command") {
      test("install --pause ask: a pause becomes Claude Code's own prompt (headless: not run), recorded as such", async () => {
        const dirs = H.makeRunDirs(`${host}-ask`);
        runs.push(dirs);
        H.configureHost(host, dirs, api.url);
        const r = await gatehouse(dirs, ["install", host, "--pause", "ask", "--url", daemon.baseUrl, "--data-dir", daemon.dataDir]);
        assert.equal(r.code, 0, `gatehouse install ${host} --pause ask:\n${r.stdout}\n${r.stderr}`);
        dirs.env = {};
        const marker = "paused-ask.marker";
        const t = await agentTurn(dirs, marker);
        assert.equal(t.ran, false, `a paused call ran with nobody to ask\n${t.describe()}`);
        const [a] = await actionFor(marker);
        assert.equal(a?.verdict, "pending", JSON.stringify(a));
        assert.equal(a.context?.pause_maps_to, "host_ask", JSON.stringify(a));
      });
    }

    for (const decision of ["approve", "deny"]) {
      test(`a paused call ${decision === "approve" ? "approved through the API runs" : "denied through the API does not run"}`, async () => {
        const { dirs } = await installed(`pause-${decision}`);
        const marker = `paused-${decision}.marker`;
        const events = openEvents(daemon);
        try {
          await events.opened;
          const turn = agentTurn(dirs, marker);
          const pending = await events.next((e) => e.type === "action.pending" && JSON.stringify(e.action.input).includes(marker), 90_000);
          const decided = await decide(daemon, pending.action, decision, `e2e ${decision}`);
          assert.equal(decided.decided_by, "human");
          const t = await turn;
          assert.equal(t.ran, decision === "approve", `paused + ${decision}: ran=${t.ran}\n${t.describe()}`);
          if (decision === "deny") assert.ok(t.modelSaw(`e2e ${decision}`) || t.modelSaw("denied"), `the model was not told of the denial\n${t.describe()}`);
          const history = await actionHistory(daemon, pending.action.action_id);
          assert.ok(history.some((h) => h.kind === "decided"), JSON.stringify(history));
        } finally {
          events.close();
        }
      });
    }

    test("daemon stopped: the call does not run", async () => {
      // A daemon of its own, stopped after the install: its data directory (and agent token) stay.
      const gone = await startDaemon({ policy: POLICY });
      try {
        const { dirs } = await installed("stopped", { url: gone.baseUrl, dataDir: gone.dataDir });
        await stopDaemon(gone, { remove: false });
        const t = await agentTurn(dirs, "allowed-stopped.marker");
        assert.equal(t.ran, false, `with the daemon stopped, an (otherwise allowed) call ran\n${t.describe()}`);
      } finally {
        await stopDaemon(gone);
      }
    });

    test("daemon hanging (accepts, never answers): the call does not run", async () => {
      const hanging = await startHangingServer();
      try {
        const { dirs } = await installed("hanging", { url: hanging.url, wait: 5 });
        const t = await agentTurn(dirs, "allowed-hanging.marker", { timeoutMs: 170_000 });
        assert.ok(hanging.accepted() > 0, `the hook never connected to the hanging daemon\n${t.describe()}`);
        assert.equal(t.ran, false, `with the daemon hanging, an (otherwise allowed) call ran\n${t.describe()}`);
      } finally {
        await hanging.close();
      }
    });

    if (transport === "http") {
      test("no agent token in the host's environment: the call does not run", async () => {
        const { dirs } = await installed("no-token");
        dirs.env = {};
        const t = await agentTurn(dirs, "allowed-no-token.marker");
        assert.equal(t.ran, false, `without a token, an (otherwise allowed) call ran\n${t.describe()}`);
      });
    }

    test("installing again changes nothing, and the hook still guards", async () => {
      const { dirs, settings } = await installed("reinstall");
      const once = fs.readFileSync(settings);
      const r = await gatehouse(dirs, ["install", host, "--url", daemon.baseUrl, "--data-dir", daemon.dataDir, "--wait", String(WAIT_SECS), "--transport", transport]);
      assert.equal(r.code, 0, `second gatehouse install ${host}:\n${r.stdout}\n${r.stderr}`);
      assert.deepEqual(fs.readFileSync(settings), once, "a second install changed the settings");
      const t = await agentTurn(dirs, "rejected-reinstall.marker");
      assert.equal(t.ran, false, `after a second install a rejected call ran\n${t.describe()}`);
    });

    test("gatehouse uninstall restores the settings byte for byte", async () => {
      // Its own data directory: install manifests and backups live there, apart from the others'.
      const { dirs, settings, original, dataDir } = await installed("uninstall", { dataDir: "own" });
      assert.notDeepEqual(fs.readFileSync(settings), original, "install changed nothing");
      const r = await gatehouse(dirs, ["uninstall", host, "--data-dir", dataDir]);
      assert.equal(r.code, 0, `gatehouse uninstall ${host} failed:\n${r.stdout}\n${r.stderr}`);
      assert.deepEqual(fs.readFileSync(settings), original, "the settings differ from before the install");
    });
  });
}
