// Browser tests of the decisions that need the person's authenticator outside the plain
// Approve button (`approvals.presence = "webauthn"`, Chromium's virtual authenticator over CDP):
// edit then approve in the decision dialog, and a remote link (from the signed webhook) whose
// confirmation page asks the authenticator before anything is decided; the link then refuses a
// second use. The webhook receiver is a local Node server on loopback (no network here): it
// verifies the HMAC-SHA256 signature over `timestamp.body` the way docs/APPROVALS.md says.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon, withTimeout,
} from './support/daemon.mjs';

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 60_000;
const SECRET = 'e2e-webhook-secret';
const POLICY = 'default = "pause"\n';

let daemon;
let browser;
let page;
let receiver;
let secrets;
const hooks = [];
const waiters = [];
const pageErrors = [];
const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

/** The receiver's check: signature over `timestamp.body` in constant time, a 5-minute window. */
function verified(headers, body) {
  const timestamp = headers['x-gatehouse-timestamp'];
  const given = Buffer.from(headers['x-gatehouse-signature'] || '');
  const expected = Buffer.from(`v1=${createHmac('sha256', SECRET).update(`${timestamp}.`).update(body).digest('hex')}`);
  return given.length === expected.length && timingSafeEqual(given, expected)
    && Math.abs(Date.now() / 1000 - Number(timestamp)) <= 300;
}

function hookFor(actionId) {
  const found = hooks.find((h) => h.pause.action_id === actionId);
  if (found) return Promise.resolve(found);
  return withTimeout(new Promise((resolve) => waiters.push({ actionId, resolve })), 10_000,
    `the webhook for ${actionId}`);
}

function check(toolUseId, command) {
  const request = fetch(`${daemon.baseUrl}/v1/check`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${daemon.agentToken}` },
    body: JSON.stringify({
      tool: 'Bash', input: { command }, session_id: 'remote-e2e', tool_use_id: toolUseId, wait_ms: 30_000,
    }),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));
  request.catch(() => {});
  return withTimeout(request, 50_000, `check ${command}`);
}

async function pendingId(toolUseId) {
  for (let i = 0; i < 100; i += 1) {
    const res = await fetch(`${daemon.baseUrl}/v1/actions?status=pending&limit=100`,
      { headers: { Authorization: `Bearer ${daemon.approverToken}` } });
    const found = (await res.json()).actions.find((a) => a.tool_use_id === toolUseId);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${toolUseId} never paused`);
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!verified(req.headers, body)) {
        res.writeHead(401).end();
        return;
      }
      const hook = JSON.parse(body.toString('utf8'));
      hooks.push(hook);
      for (const w of waiters.filter((x) => x.actionId === hook.pause.action_id)) w.resolve(hook);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  secrets = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-secrets-'));
  await writeFile(join(secrets, 'webhook.secret'), `${SECRET}\n`);
  const config = '[classifier]\nkind = "none"\n\n[notify.webhook]\n' +
    `url = "http://127.0.0.1:${receiver.address().port}/hook"\n` +
    `secret_file = "${join(secrets, 'webhook.secret')}"\n`;
  daemon = await startDaemon({ policy: POLICY, config, presence: 'webauthn', terminal: true });
  await assertServesCurrentAssets(daemon.baseUrl);
  browser = await launchChromium();
  const context = await browser.newContext();
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
    { timeout: UI_TIMEOUT_MS });
  await byTestId('enrol-code').fill(daemon.enrolmentCode);
  await byTestId('enrol').click();
  await page.locator('[data-testid="presence-status"]', { hasText: '1 authenticator enrolled' })
    .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
  receiver?.close();
  if (secrets) await rm(secrets, { recursive: true, force: true });
  assert.deepEqual(pageErrors, [], 'no script errors on the pages');
}, { timeout: TEST_TIMEOUT_MS });

test('edit then approve is confirmed with the authenticator', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiting = check('e1', 'git push --force origin main');
  const row = page.locator('[data-testid="pending-row"]', { hasText: 'git push --force origin main' });
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.locator('button').click();
  await page.locator('[data-testid="approve"]:not([disabled])').waitFor({ timeout: UI_TIMEOUT_MS });
  await byTestId('edit').click();
  await byTestId('edit-command').fill('git push origin main');
  await byTestId('edit-check').click();
  await page.locator('[data-testid="edit-approve"]:not([disabled])').waitFor({ timeout: UI_TIMEOUT_MS });
  await byTestId('edit-approve').click();
  const decided = await waiting;
  assert.equal(decided.body.verdict, 'allow', JSON.stringify(decided.body));
  assert.deepEqual(decided.body.updated_input, { command: 'git push origin main' });
  const res = await fetch(`${daemon.baseUrl}/v1/actions/${decided.body.action_id}`,
    { headers: { Authorization: `Bearer ${daemon.approverToken}` } });
  assert.match((await res.json()).decision.edit.edited_by, /dashboard, authenticator /);
});

test('a remote link opens a confirmation that decides only with the authenticator, once',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const waiting = check('r1', 'cargo publish');
    const action = await pendingId('r1');
    const hook = await hookFor(action.action_id);
    assert.equal(hook.pause.action_hash, action.action_hash);
    // The link alone (no assertion) decides nothing.
    const bare = await fetch(hook.pause.approve_url, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
    });
    assert.equal(bare.status, 403, await bare.clone().text());
    await page.goto(hook.pause.approve_url, { timeout: UI_TIMEOUT_MS });
    assert.match(await byTestId('confirm-summary').textContent(), /cargo publish/);
    await page.locator('[data-testid="confirm"]:not([disabled])').waitFor({ timeout: UI_TIMEOUT_MS });
    await page.screenshot({ path: join(process.env.E2E_ARTIFACTS || tmpdir(), 'remote-confirm.png'), fullPage: true });
    await byTestId('confirm').click();
    await page.locator('[data-testid="confirm-result"][data-verdict="allow"]').waitFor({ timeout: UI_TIMEOUT_MS });
    const decided = await waiting;
    assert.equal(decided.body.verdict, 'allow');
    // Used: the page now refuses; the deny link is withdrawn.
    const again = await page.goto(hook.pause.approve_url, { timeout: UI_TIMEOUT_MS });
    assert.equal(again.status(), 410);
    const deny = await fetch(hook.pause.deny_url);
    assert.equal(deny.status, 410);
    assert.match(await deny.text(), /already decided/);
  });
