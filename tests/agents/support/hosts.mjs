// Runs the real agent CLIs (installed by npm in tests/agents/node_modules) headless, each in its own
// temporary HOME and TMPDIR, pointed at the fake model API on loopback. Nothing of the caller's
// environment leaks in except PATH and locale: no real API key or settings can be used.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const AGENTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(AGENTS_DIR, "node_modules", ".bin");
export const CLAUDE = path.join(BIN, "claude");
export const CODEX = path.join(BIN, "codex");
export const GEMINI = path.join(BIN, "gemini");

/** The fake provider's name in Codex's config; Codex names it in its banner. */
export const CODEX_PROVIDER = "gatehouse_fake";

/** A fresh directory tree for one CLI run: HOME, TMPDIR and a working directory (the "project"). */
export function makeRunDirs(label) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `gh-agents-${label}-`));
  const dirs = {
    root,
    home: path.join(root, "home"),
    tmp: path.join(root, "tmp"),
    work: path.join(root, "work"),
  };
  for (const d of [dirs.home, dirs.tmp, dirs.work]) fs.mkdirSync(d, { recursive: true });
  return dirs;
}

export function removeRunDirs(dirs) {
  fs.rmSync(dirs.root, { recursive: true, force: true });
}

function baseEnv(dirs, extra) {
  return {
    PATH: process.env.PATH,
    LANG: "C.UTF-8",
    HOME: dirs.home,
    TMPDIR: dirs.tmp,
    USER: os.userInfo().username,
    TERM: "dumb",
    NO_COLOR: "1",
    CI: "1",
    ...extra,
  };
}

/** Spawns `cmd args` and resolves {code, signal, stdout, stderr, ms}; kills it after timeoutMs. */
export function run(cmd, args, { cwd, env, timeoutMs = 120_000, input = "" }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
    // A program that exits without reading its stdin (a `gatehouse doctor`) closes the pipe
    // first: that EPIPE is not the test's failure, the exit code and output are.
    child.stdin.on("error", (err) => {
      if (err.code !== "EPIPE") reject(err);
    });
    child.stdin.end(input);
  });
}

// ---------- Claude Code ----------

export function claudeSettingsPath(dirs) {
  return path.join(dirs.home, ".claude", "settings.json");
}

export function runClaude(dirs, apiUrl, prompt, { timeoutMs = 120_000, extraArgs = [], env: extraEnv = {} } = {}) {
  const env = baseEnv(dirs, {
    ...extraEnv,
    ANTHROPIC_BASE_URL: apiUrl,
    ANTHROPIC_API_KEY: "sk-ant-fake-gatehouse-test",
    // As root, -p with --dangerously-skip-permissions refuses to start without this.
    IS_SANDBOX: "1",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_AUTOUPDATER: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_ERROR_REPORTING: "1",
  });
  const args = ["-p", prompt, "--output-format", "json", "--dangerously-skip-permissions", "--max-turns", "6", ...extraArgs];
  return run(CLAUDE, args, { cwd: dirs.work, env, timeoutMs });
}

// ---------- Codex CLI ----------

export function codexHome(dirs) {
  return path.join(dirs.home, ".codex");
}

/** The provider part of Codex's config.toml: the fake API, no retries, no real provider. */
export function codexProviderToml(apiUrl) {
  return [
    `model = "gpt-5.5"`,
    `model_provider = "${CODEX_PROVIDER}"`,
    ``,
    `[model_providers.${CODEX_PROVIDER}]`,
    `name = "Gatehouse fake model API"`,
    `base_url = "${apiUrl}/v1"`,
    `wire_api = "responses"`,
    `env_key = "GATEHOUSE_FAKE_OPENAI_KEY"`,
    `request_max_retries = 0`,
    `stream_max_retries = 0`,
    ``,
  ].join("\n");
}

export function runCodex(dirs, prompt, { timeoutMs = 120_000, extraArgs = [], env: extraEnv = {} } = {}) {
  const env = baseEnv(dirs, {
    ...extraEnv,
    CODEX_HOME: codexHome(dirs),
    GATEHOUSE_FAKE_OPENAI_KEY: "sk-fake-gatehouse-test",
  });
  const args = ["exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", ...extraArgs, prompt];
  return run(CODEX, args, { cwd: dirs.work, env, timeoutMs });
}

// ---------- Gemini CLI ----------

export function geminiSettingsPath(dirs) {
  return path.join(dirs.home, ".gemini", "settings.json");
}

/** Settings Gemini needs to run offline against the fake API (merged under any hooks). */
export function geminiBaseSettings() {
  return {
    security: { auth: { selectedType: "gemini-api-key" } },
    telemetry: { enabled: false },
    privacy: { usageStatisticsEnabled: false },
    // The current spelling: Gemini rewrites settings.json at every start (even `--version`) to
    // migrate deprecated keys such as general.disableAutoUpdate.
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
  };
}

export function runGemini(dirs, apiUrl, prompt, { timeoutMs = 120_000, extraArgs = [], env: extraEnv = {} } = {}) {
  const env = baseEnv(dirs, {
    ...extraEnv,
    GEMINI_API_KEY: "fake-gatehouse-test",
    GOOGLE_GEMINI_BASE_URL: apiUrl,
    GEMINI_CLI_NO_RELAUNCH: "true",
  });
  const args = ["-p", prompt, "--output-format", "json", "--yolo", "--skip-trust", ...extraArgs];
  return run(GEMINI, args, { cwd: dirs.work, env, timeoutMs });
}

export function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

// ---------- one interface over the three hosts ----------

export const HOST_NAMES = ["claude-code", "codex", "gemini"];

/**
 * Writes the host's base settings for an offline run (Codex: the fake provider; Gemini: API-key
 * auth, no telemetry) and, when given, one plain pre-tool hook for every tool:
 * `preToolHook = {command, timeoutSec, onFailure}` (onFailure: Claude Code only).
 */
export function configureHost(host, dirs, apiUrl, { preToolHook } = {}) {
  if (host === "claude-code") {
    const settings = {};
    if (preToolHook) {
      const hook = { type: "command", command: preToolHook.command };
      if (preToolHook.timeoutSec) hook.timeout = preToolHook.timeoutSec;
      if (preToolHook.onFailure) hook.onFailure = preToolHook.onFailure;
      settings.hooks = { PreToolUse: [{ matcher: "*", hooks: [hook] }] };
    }
    writeJson(claudeSettingsPath(dirs), settings);
  } else if (host === "codex") {
    let toml = codexProviderToml(apiUrl);
    if (preToolHook) {
      toml += `\n[[hooks.PreToolUse]]\nmatcher = ".*"\n[[hooks.PreToolUse.hooks]]\ntype = "command"\ncommand = ${JSON.stringify(preToolHook.command)}\n`;
      if (preToolHook.timeoutSec) toml += `timeout = ${preToolHook.timeoutSec}\n`;
    }
    fs.mkdirSync(codexHome(dirs), { recursive: true });
    fs.writeFileSync(path.join(codexHome(dirs), "config.toml"), toml);
  } else if (host === "gemini") {
    const settings = geminiBaseSettings();
    if (preToolHook) {
      const hook = { type: "command", command: preToolHook.command };
      if (preToolHook.timeoutSec) hook.timeout = preToolHook.timeoutSec * 1000;
      settings.hooks = { BeforeTool: [{ matcher: ".*", hooks: [hook] }] };
    }
    writeJson(geminiSettingsPath(dirs), settings);
  } else {
    throw new Error(`unknown host ${host}`);
  }
}

/** The settings file `gatehouse install <host>` (user scope) edits. */
export function settingsPath(host, dirs) {
  if (host === "claude-code") return claudeSettingsPath(dirs);
  if (host === "codex") return path.join(codexHome(dirs), "config.toml");
  return geminiSettingsPath(dirs);
}

/** Runs one headless turn of `host` with `prompt`; extra env (e.g. GATEHOUSE_*) passes through. */
export function runHost(host, dirs, apiUrl, prompt, { bypassHookTrust = false, env = {}, timeoutMs } = {}) {
  if (host === "claude-code") return runClaude(dirs, apiUrl, prompt, { timeoutMs, env });
  if (host === "codex") {
    return runCodex(dirs, prompt, { timeoutMs, env, extraArgs: bypassHookTrust ? ["--dangerously-bypass-hook-trust"] : [] });
  }
  return runGemini(dirs, apiUrl, prompt, { timeoutMs, env });
}
