// Shared harness of the browser tests: starts and stops a real `gatehouse serve` on a free
// loopback port with its own data directory, and launches Debian's Chromium headless.
//
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const GATEHOUSE_BIN = resolve(REPO_ROOT, process.env.GATEHOUSE_BIN || 'target/debug/gatehouse');
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const STARTUP_TIMEOUT_MS = 30_000;

/** Rejects with a message naming `what` if `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `cmd args…` as one /bin/sh word list, for `script -c`. */
function shellWords(words) {
  return words.map((w) => `'${String(w).replace(/'/g, `'\\''`)}'`).join(' ');
}

/**
 * Starts `gatehouse serve` with `policy` and `config` written to `DATA_DIR/policy.toml` and
 * `DATA_DIR/config.toml`; resolves once it listens, with a one-time login link fetched with the
 * approver token (the daemon prints its own link on its terminal only, never on stdout).
 *
 * `presence`: `"off"` (the default here: most tests decide with the approver token) or
 * `"webauthn"` (as shipped). `terminal: true` runs it under `script(1)`, so it has a controlling
 * terminal: what it shows there only (the login link, the presence enrolment code) is then in
 * `terminalLines` — the tests read it the way a person reads their terminal.
 * @returns {Promise<{ proc: import('node:child_process').ChildProcess, dataDir: string,
 *   output: string[], baseUrl: string, loginUrl: string, agentToken: string, approverToken: string,
 *   enrolmentCode: string|null }>}
 */
export async function startDaemon({ policy, config, presence = 'off', terminal = false }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-'));
  const policyPath = join(dataDir, 'policy.toml');
  const configPath = join(dataDir, 'config.toml');
  await writeFile(policyPath, policy);
  await writeFile(configPath, config);
  const serve = [GATEHOUSE_BIN, 'serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--policy', policyPath, '--config', configPath];
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', GATEHOUSE_APPROVALS_PRESENCE: presence };
  // util-linux script(1): a pseudo-terminal for the daemon, its output on script's stdout.
  const proc = terminal
    ? spawn('script', ['-q', '-f', '-e', '-c', `exec ${shellWords(serve)}`, '/dev/null'],
      { stdio: ['pipe', 'pipe', 'pipe'], env })
    : spawn(serve[0], serve.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const output = [];
  createInterface({ input: proc.stderr }).on('line', (line) => output.push(`[stderr] ${line}`));

  let enrolmentCode = null;
  const ready = new Promise((resolvePromise, reject) => {
    let baseUrl = null;
    let shown = false;
    createInterface({ input: proc.stdout }).on('line', (raw) => {
      const line = raw.replace(/\r$/, '');
      output.push(`[stdout] ${line}`);
      const listening = line.match(/gatehouse listening on (http:\/\/\S+)/);
      if (listening) baseUrl = listening[1].replace(/\/$/, '');
      const code = line.match(/presence enrolment code: ([0-9A-Z-]+)/);
      if (code) enrolmentCode = code[1];
      // The line after the secrets: everything the daemon shows at start is out.
      if (/^dashboard login: (shown on the terminal|no terminal)/.test(line)) shown = true;
      if (baseUrl && shown) resolvePromise({ baseUrl });
    });
    proc.once('error', reject);
    proc.once('exit', (code, signal) =>
      reject(new Error(`gatehouse exited early (code ${code}, signal ${signal}):\n${output.join('\n')}`)));
  });
  const started = { proc, dataDir, output, baseUrl: '', loginUrl: '', agentToken: '', approverToken: '' };
  try {
    Object.assign(started, await withTimeout(ready, STARTUP_TIMEOUT_MS,
      `gatehouse serve printing its URLs (${GATEHOUSE_BIN})`));
    started.agentToken = (await readFile(join(dataDir, 'agent.token'), 'utf8')).trim();
    started.approverToken = (await readFile(join(dataDir, 'approver.token'), 'utf8')).trim();
    started.enrolmentCode = enrolmentCode;
    started.loginUrl = await loginLink(started);
  } catch (e) {
    await stopDaemon(started);
    throw e;
  }
  return started;
}

/** A fresh one-time dashboard login URL (`POST /v1/login-codes` with the approver token). */
export async function loginLink(d) {
  const res = await fetch(`${d.baseUrl}/v1/login-codes`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${d.approverToken}` },
    body: '{}',
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).url;
}

/** SIGTERM (SIGKILL after 5 s) and removes the data directory. */
export async function stopDaemon(d) {
  if (!d) return;
  const { proc, dataDir } = d;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(dataDir, { recursive: true, force: true });
}

/** The daemon embeds the dashboard at compile time: testing a stale binary would test old files. */
export async function assertServesCurrentAssets(baseUrl) {
  const modules = (await readdir(join(REPO_ROOT, 'crates/gatehouse-daemon/assets/js')))
    .filter((f) => f.endsWith('.js')).map((f) => `js/${f}`);
  for (const file of ['index.html', 'app.css', ...modules]) {
    const route = file === 'index.html' ? '/' : `/assets/${file}`;
    const served = await (await fetch(`${baseUrl}${route}`)).text();
    const onDisk = await readFile(join(REPO_ROOT, 'crates/gatehouse-daemon/assets', file), 'utf8');
    assert.ok(served === onDisk,
      `${GATEHOUSE_BIN} serves an old ${file}: rebuild it (cargo build -p gatehouse) and rerun`);
  }
}

/** Debian's Chromium, headless, with the network chatter this machine refuses turned off. */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: STARTUP_TIMEOUT_MS,
  });
}
