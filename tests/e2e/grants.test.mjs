// Browser tests of standing grants against the real daemon under builtin:developer: "Approve and
// allow similar…" proposes the narrowest rules with how many past pauses they would have
// allowed; saving approves the action and the next similar action is allowed (naming the grant)
// while an unrelated one still pauses; revoking and expiry stop it; a secret is never offered;
// repeated approvals become a suggestion a person saves. Presence is off here (presence.test.mjs
// covers WebAuthn; the grant goes through the same decision).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon, withTimeout,
} from './support/daemon.mjs';

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

const POLICY = 'include = ["builtin:developer"]\n';
const CONFIG = '[classifier]\nkind = "none"\n';

let daemon;
let browser;
let page;
let project;
let useCount = 0;
const pageErrors = [];
const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

/** A check from the agent; `waitMs` long for one the page decides while it waits. */
function check(input, { tool = 'Bash', waitMs = 0 } = {}) {
  useCount += 1;
  const request = fetch(`${daemon.baseUrl}/v1/check`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${daemon.agentToken}` },
    body: JSON.stringify({
      tool, input, cwd: project, session_id: 'grants-e2e', tool_use_id: `use-${useCount}`, wait_ms: waitMs,
    }),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));
  request.catch(() => {});
  return withTimeout(request, waitMs + 20_000, `check ${JSON.stringify(input)}`);
}

async function approver(path, { method = 'GET', body } = {}) {
  const res = await fetch(`${daemon.baseUrl}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${daemon.approverToken}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function openRow(text) {
  const row = page.locator('[data-testid="pending-row"]', { hasText: text });
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.locator('button').click();
  await byTestId('modal').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
}

before(async () => {
  project = await mkdtemp(join(tmpdir(), 'gatehouse-grants-project-'));
  daemon = await startDaemon({ policy: POLICY, config: CONFIG });
  await assertServesCurrentAssets(daemon.baseUrl);
  browser = await launchChromium();
  page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
    { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
  if (project) await rm(project, { recursive: true, force: true });
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
}, { timeout: TEST_TIMEOUT_MS });

test('a grant is proposed, saved, allows the next similar action and is revoked',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    // An earlier pause of the same command: the preview counts it.
    const earlier = await check({ command: 'docker ps -a' });
    assert.equal(earlier.body.verdict, 'pending');
    await approver(`/v1/actions/${earlier.body.action_id}/decision`, {
      method: 'POST', body: { decision: 'deny' },
    });
    const waiting = check({ command: 'docker ps -a' }, { waitMs: 30_000 });
    await openRow('docker ps -a');
    const similar = byTestId('approve-similar');
    await similar.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    await similar.click();
    const dialog = byTestId('grant-dialog');
    await dialog.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    const rules = JSON.parse(await byTestId('grant-rules').inputValue());
    assert.equal(rules[0].command.program, 'docker');
    assert.deepEqual(rules[0].command.args_prefix, ['ps']);
    assert.match(await byTestId('grant-would-allow').textContent(), /Would have allowed 1 of the last \d+ paused/);
    assert.ok(await byTestId('grant-scope-project').isChecked(), 'this project is the default scope');
    await byTestId('grant-save').click();
    const decided = await waiting;
    assert.equal(decided.body.verdict, 'allow', 'the action itself is approved');
    await dialog.waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });

    const row = byTestId('grant-row').first();
    await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    const grantId = await row.getAttribute('data-grant-id');
    assert.equal(await row.getAttribute('data-status'), 'active');

    const next = await check({ command: 'docker ps -a' });
    assert.equal(next.body.verdict, 'allow');
    assert.equal(next.body.rule_id, `grant:${grantId}`);
    const unrelated = await check({ command: 'docker images' });
    assert.equal(unrelated.body.verdict, 'pending', 'an unrelated action still pauses');

    await page.reload();
    await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: UI_TIMEOUT_MS });
    const active = page.locator(`[data-testid="grant-row"][data-grant-id="${grantId}"]`);
    await active.locator('[data-testid="grant-revoke"]').click();
    await page.locator(`[data-testid="grant-row"][data-grant-id="${grantId}"][data-status="revoked"]`)
      .waitFor({ timeout: UI_TIMEOUT_MS });
    const after = await check({ command: 'docker ps -a' });
    assert.equal(after.body.verdict, 'pending', 'a revoked grant allows nothing');
  });

test('a grant expires by itself', { timeout: TEST_TIMEOUT_MS }, async () => {
  const paused = await check({ command: 'du -sh /var/log' });
  const shown = await approver(`/v1/actions/${paused.body.action_id}`);
  const expiresAt = Date.now() + 2_000;
  const saved = await approver(`/v1/actions/${paused.body.action_id}/grant`, {
    method: 'POST',
    body: { action_hash: shown.body.action_hash, scope: 'project', expires_at_ms: expiresAt },
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  assert.equal((await check({ command: 'du -sh /var/log' })).body.verdict, 'allow');
  // Expiry is a time, not an event: wait until it has passed.
  await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 100));
  assert.equal((await check({ command: 'du -sh /var/log' })).body.verdict, 'pending');
  await page.reload();
  await page.locator(`[data-testid="grant-row"][data-grant-id="${saved.body.grant.id}"][data-status="expired"]`)
    .waitFor({ timeout: UI_TIMEOUT_MS });
});

test('a secret is never offered a grant', { timeout: TEST_TIMEOUT_MS }, async () => {
  const paused = check({ file_path: join(project, '.env') }, { tool: 'Read', waitMs: 30_000 });
  await openRow('.env');
  const refused = byTestId('grant-refused');
  await refused.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.match(await refused.textContent(), /secret/);
  assert.equal(await byTestId('approve-similar').isVisible(), false);
  await page.waitForTimeout(700); // the decision buttons arm after a moment (ARM_DELAY_MS)
  await byTestId('deny').click();
  assert.equal((await paused).body.verdict, 'reject');
});

test('repeated approvals become a suggestion a person reviews and saves',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    for (let i = 0; i < 3; i += 1) {
      const paused = await check({ command: 'du -sh /var/cache' });
      assert.equal(paused.body.verdict, 'pending', JSON.stringify(paused.body));
      const shown = await approver(`/v1/actions/${paused.body.action_id}`);
      const decided = await approver(`/v1/actions/${paused.body.action_id}/decision`, {
        method: 'POST', body: { decision: 'approve', action_hash: shown.body.action_hash },
      });
      assert.equal(decided.status, 200, JSON.stringify(decided.body));
    }
    await page.reload();
    const suggestion = page.locator('[data-testid="grant-suggestion"]', { hasText: 'du -sh /var/cache' });
    await suggestion.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    assert.match(await suggestion.textContent(), /approved this 3 times/);
    // Suggesting applies nothing.
    assert.equal((await check({ command: 'du -sh /var/cache' })).body.verdict, 'pending');
    await suggestion.locator('[data-testid="grant-suggestion-review"]').click();
    await byTestId('grant-dialog').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    await byTestId('grant-save').click();
    await byTestId('grant-dialog').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
    assert.equal((await check({ command: 'du -sh /var/cache' })).body.verdict, 'allow');
    await page.screenshot({ path: join(process.env.E2E_ARTIFACTS || tmpdir(), 'grants.png'), fullPage: true });
  });
