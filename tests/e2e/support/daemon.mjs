// Shared harness of the browser tests: starts and stops a real `gatehouse serve` on a free
// loopback port with its own data directory, and launches Debian's Chromium headless.
//
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

/**
 * Starts `gatehouse serve` with `policy` and `config` written to `DATA_DIR/policy.toml` and
 * `DATA_DIR/config.toml`; resolves once it has printed its URL and login link.
 * @returns {Promise<{ proc: import('node:child_process').ChildProcess, dataDir: string,
 *   output: string[], baseUrl: string, loginUrl: string, agentToken: string, approverToken: string }>}
 */
export async function startDaemon({ policy, config }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-'));
  const policyPath = join(dataDir, 'policy.toml');
  const configPath = join(dataDir, 'config.toml');
  await writeFile(policyPath, policy);
  await writeFile(configPath, config);
  const proc = spawn(
    GATEHOUSE_BIN,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--policy', policyPath,
      '--config', configPath],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } },
  );
  const output = [];
  createInterface({ input: proc.stderr }).on('line', (line) => output.push(`[stderr] ${line}`));

  const ready = new Promise((resolvePromise, reject) => {
    let baseUrl = null;
    let loginUrl = null;
    createInterface({ input: proc.stdout }).on('line', (line) => {
      output.push(`[stdout] ${line}`);
      const listening = line.match(/gatehouse listening on (http:\/\/\S+)/);
      if (listening) baseUrl = listening[1].replace(/\/$/, '');
      const login = line.match(/dashboard login: (http:\/\/\S+)/);
      if (login) loginUrl = login[1];
      if (baseUrl && loginUrl) resolvePromise({ baseUrl, loginUrl });
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
  } catch (e) {
    await stopDaemon(started);
    throw e;
  }
  return started;
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
  for (const file of ['index.html', 'app.js', 'app.css']) {
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
