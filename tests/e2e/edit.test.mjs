// Browser tests of edit then approve and deny with a note, in the decision dialog, against the
// real daemon: the person edits a paused command, sees the rules' re-check (an edit they reject
// is refused and cannot be approved), approves the edited action, and the waiting agent gets the
// edited input; a denial with a note reaches the agent. The ledger (read through the API) keeps
// the original input, the edited one, who edited, and the note. Presence is off here;
// remote_presence.test.mjs confirms an edit with a (virtual) authenticator.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon, withTimeout,
} from './support/daemon.mjs';

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

// Everything pauses; `rm -rf` is rejected: an edit into it must be refused.
const POLICY = `default = "pause"
[[rules]]
id = "no-rm-rf"
effect = "reject"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "rm -rf"
`;
const CONFIG = '[classifier]\nkind = "none"\n';

let daemon;
let browser;
let page;
let useCount = 0;
const pageErrors = [];
const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

/** A check from the agent that waits up to `waitMs` for the person. */
function check(input, { waitMs = 30_000 } = {}) {
  useCount += 1;
  const request = fetch(`${daemon.baseUrl}/v1/check`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${daemon.agentToken}` },
    body: JSON.stringify({
      tool: 'Bash', input, cwd: '/tmp', session_id: 'edit-e2e', tool_use_id: `use-${useCount}`, wait_ms: waitMs,
    }),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));
  request.catch(() => {});
  return withTimeout(request, waitMs + 20_000, `check ${JSON.stringify(input)}`);
}

async function approver(path) {
  const res = await fetch(`${daemon.baseUrl}${path}`, {
    headers: { Authorization: `Bearer ${daemon.approverToken}` },
  });
  return { status: res.status, body: await res.json() };
}

async function openRow(text) {
  const row = page.locator('[data-testid="pending-row"]', { hasText: text });
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.locator('button').click();
  await byTestId('modal').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  // The decision buttons arm a moment after an action is shown (ARM_DELAY_MS).
  await page.locator('[data-testid="approve"]:not([disabled])').waitFor({ timeout: UI_TIMEOUT_MS });
}

before(async () => {
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
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
}, { timeout: TEST_TIMEOUT_MS });

test('the person edits a paused command, sees the re-check, and approves the edited action',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const waiting = check({ command: 'git push --force origin main' });
    await openRow('git push --force origin main');
    await byTestId('edit').click();
    const panel = byTestId('edit-panel');
    await panel.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    assert.equal(await byTestId('edit-command').inputValue(), 'git push --force origin main');
    assert.ok(await byTestId('edit-approve').isDisabled(), 'nothing to approve before a check');

    // An edit the rules reject: the re-check says so, and it cannot be approved.
    await byTestId('edit-command').fill('rm -rf build');
    assert.equal(JSON.parse(await byTestId('edit-json').inputValue()).command, 'rm -rf build',
      'the command line edits the input');
    await byTestId('edit-check').click();
    await page.locator('[data-testid="edit-result"][data-tone="bad"]').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match(await byTestId('edit-result').textContent(), /Refused: .*no-rm-rf/);
    assert.ok(await byTestId('edit-approve').isDisabled());

    // A good edit: checked, then approved.
    await byTestId('edit-command').fill('git push origin main');
    await byTestId('edit-check').click();
    await page.locator('[data-testid="edit-result"][data-tone="ok"]').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match(await byTestId('edit-result').textContent(), /The rules accept the edit: on its own it would pause/);
    // A change after the check must be checked again.
    await byTestId('edit-command').fill('git push origin main ');
    assert.ok(await byTestId('edit-approve').isDisabled(), 'a changed edit is checked again');
    await byTestId('edit-command').fill('git push origin main');
    await byTestId('edit-check').click();
    await page.locator('[data-testid="edit-approve"]:not([disabled])').waitFor({ timeout: UI_TIMEOUT_MS });
    await byTestId('note').fill('no force push');
    await page.screenshot({ path: join(process.env.E2E_ARTIFACTS || tmpdir(), 'edit.png'), fullPage: true });
    await byTestId('edit-approve').click();

    const decided = await waiting;
    assert.equal(decided.body.verdict, 'allow', JSON.stringify(decided.body));
    assert.deepEqual(decided.body.updated_input, { command: 'git push origin main' },
      'the agent gets the edited input');
    await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
    await page.locator('.toast', { hasText: 'Approved (edited): Bash git push origin main' })
      .first().waitFor({ timeout: UI_TIMEOUT_MS });

    const id = decided.body.action_id;
    // The recent decisions list shows what ran (the edited command), marked as edited.
    const recent = page.locator(`[data-testid="recent-row"][data-action-id="${id}"]`);
    await recent.waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match(await recent.textContent(), /git push origin main/);
    assert.doesNotMatch(await recent.textContent(), /--force/, 'not the original command');
    assert.match(await recent.textContent(), /edited by/);
    const action = await approver(`/v1/actions/${id}`);
    assert.equal(action.body.input.command, 'git push --force origin main', 'the original input stays');
    assert.equal(action.body.decision.edit.edited_input.command, 'git push origin main');
    assert.match(action.body.decision.edit.edited_by, /dashboard/);
    assert.equal(action.body.decision.note, 'no force push');
    const history = await approver(`/v1/actions/${id}/history`);
    assert.ok(JSON.stringify(history.body).includes('edited'), JSON.stringify(history.body));
  });

test('deny with note needs a note, and the note reaches the agent and the ledger',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const waiting = check({ command: 'cargo publish' });
    await openRow('cargo publish');
    await byTestId('deny-note').click();
    await byTestId('modal-error').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    assert.match(await byTestId('modal-error').textContent(), /Write a note/);
    assert.ok(await byTestId('modal').isVisible(), 'nothing was decided');

    await byTestId('note').fill('run cargo publish --dry-run first');
    await byTestId('deny-note').click();
    const decided = await waiting;
    assert.equal(decided.body.verdict, 'reject');
    assert.equal(decided.body.note, 'run cargo publish --dry-run first', 'the agent reads the note');
    const action = await approver(`/v1/actions/${decided.body.action_id}`);
    assert.equal(action.body.decision.note, 'run cargo publish --dry-run first');
    assert.equal(action.body.decision.edit ?? null, null, 'a denial carries no edit');
  });
