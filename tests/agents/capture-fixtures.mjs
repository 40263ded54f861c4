// Captures real hook payloads from the real CLIs into crates/gatehouse-hosts/tests/fixtures/.
//
// Each CLI runs headless against the fake model API with a plain hook that dumps its stdin; the
// scripted model asks for a shell call, a file write and a file read (Claude Code also a subagent
// that runs a shell call). Each payload is saved as <host>/<event>-<tool>.json. The run's random
// temporary root is replaced by /tmp/gatehouse-agents so re-captures differ only in ids and times.
//
// Usage: node tests/agents/capture-fixtures.mjs [claude-code|codex|gemini ...]

import fs from "node:fs";
import path from "node:path";
import { scriptPrompt, startFakeModelApi } from "./support/fake-model-api.mjs";
import * as H from "./support/hosts.mjs";

const FIXTURES = path.resolve(H.AGENTS_DIR, "..", "..", "crates", "gatehouse-hosts", "tests", "fixtures");
const PLACEHOLDER_ROOT = "/tmp/gatehouse-agents";

function steps(dirs) {
  return [
    { shell: `echo ran > ${path.join(dirs.work, "marker.txt")}` },
    { write: { path: path.join(dirs.work, "notes.txt"), content: "hello from the model\n" } },
    { read: path.join(dirs.work, "notes.txt") },
  ];
}

const HOSTS = {
  "claude-code": {
    events: ["PreToolUse", "PostToolUse"],
    async run(dirs, api, hook) {
      const matcherAll = (ev) => [{ matcher: "*", hooks: [{ type: "command", command: hook(ev) }] }];
      H.writeJson(H.claudeSettingsPath(dirs), {
        hooks: { PreToolUse: matcherAll("PreToolUse"), PostToolUse: matcherAll("PostToolUse") },
      });
      const sub = scriptPrompt({ steps: [{ shell: `echo sub > ${path.join(dirs.work, "sub-marker.txt")}` }], final: "Subagent done." });
      const script = { steps: [...steps(dirs), { task: { prompt: sub } }], final: "All done." };
      return H.runClaude(dirs, api.url, scriptPrompt(script));
    },
  },
  codex: {
    events: ["PreToolUse", "PostToolUse"],
    async run(dirs, api, hook) {
      const hooks = ["PreToolUse", "PostToolUse"]
        .map((ev) => `[[hooks.${ev}]]\nmatcher = ".*"\n[[hooks.${ev}.hooks]]\ntype = "command"\ncommand = "${hook(ev)}"\n`)
        .join("\n");
      fs.mkdirSync(H.codexHome(dirs), { recursive: true });
      fs.writeFileSync(path.join(H.codexHome(dirs), "config.toml"), `${H.codexProviderToml(api.url)}\n${hooks}`);
      // Capture only: trust is not what is being recorded here (the e2e tests install for real).
      // Codex has no read tool (its model reads with the shell), so the read step is left out.
      return H.runCodex(dirs, scriptPrompt({ steps: steps(dirs).slice(0, 2), final: "All done." }), {
        extraArgs: ["--dangerously-bypass-hook-trust"],
      });
    },
  },
  gemini: {
    events: ["BeforeTool", "AfterTool"],
    async run(dirs, api, hook) {
      const matcherAll = (ev) => [{ matcher: ".*", hooks: [{ type: "command", command: hook(ev), timeout: 30000 }] }];
      H.writeJson(H.geminiSettingsPath(dirs), {
        ...H.geminiBaseSettings(),
        hooks: { BeforeTool: matcherAll("BeforeTool"), AfterTool: matcherAll("AfterTool") },
      });
      return H.runGemini(dirs, api.url, scriptPrompt({ steps: steps(dirs), final: "All done." }));
    },
  },
};

async function capture(host) {
  const api = await startFakeModelApi();
  const dirs = H.makeRunDirs(host);
  const dumpDir = path.join(dirs.root, "dump");
  const hook = (ev) => `node ${path.join(H.AGENTS_DIR, "support", "dump-hook.mjs")} ${ev} ${dumpDir}`;
  try {
    const result = await HOSTS[host].run(dirs, api, hook);
    if (result.code !== 0) throw new Error(`${host} exited ${result.code}: ${result.stderr.slice(-2000)}`);
    const outDir = path.join(FIXTURES, host);
    fs.mkdirSync(outDir, { recursive: true });
    const written = [];
    for (const file of fs.readdirSync(dumpDir).sort()) {
      // Claude Code also names the project directory with every "/" turned into "-".
      const raw = fs
        .readFileSync(path.join(dumpDir, file), "utf8")
        .split(dirs.root)
        .join(PLACEHOLDER_ROOT)
        .split(dirs.root.replaceAll("/", "-"))
        .join(PLACEHOLDER_ROOT.replaceAll("/", "-"));
      const payload = JSON.parse(raw);
      const sub = payload.agent_id ? "-subagent" : "";
      const name = `${payload.hook_event_name}-${payload.tool_name}${sub}.json`;
      fs.writeFileSync(path.join(outDir, name), `${JSON.stringify(payload, null, 2)}\n`);
      written.push(name);
    }
    console.log(`${host}: ${written.join(", ")}`);
    if (!written.length) throw new Error(`${host}: no hook ran`);
  } finally {
    await api.close();
    H.removeRunDirs(dirs);
  }
}

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(HOSTS);
for (const host of wanted) await capture(host);
