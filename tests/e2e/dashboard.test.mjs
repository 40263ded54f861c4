// Browser end-to-end tests of the dashboard against the real daemon: an agent's paused check is
// approved or denied by clicking in Chromium, and the agent's waiting request gets that verdict.
//
// Run: `scripts/install-test-deps.sh && cargo build -p gatehouse && (cd tests/e2e && npm test)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium),
// E2E_SCREENSHOT_DIR (default the OS temp dir).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon, withTimeout,
} from './support/daemon.mjs';

const SCREENSHOT_DIR = process.env.E2E_SCREENSHOT_DIR || tmpdir();

const UI_TIMEOUT_MS = 15_000;
const CHECK_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 60_000;

const POLICY = `# e2e policy: Read is allowed, Bash (and everything else) waits for a person.
default = "pause"

[[rules]]
id = "read-ok"
effect = "allow"
tool = "Read"

[[rules]]
id = "pause-bash"
effect = "pause"
tool = "Bash"
reason = "shell commands need a person's approval"
`;

// A constant tier-2 score, so the page's score badge is exercised without a model.
const CONFIG = `[classifier]
kind = "fixed"
score = 0.91
label = "malicious"
`;

const XSS = '<img src=x onerror=alert(1)>';

/** @type {{ proc: import('node:child_process').ChildProcess, baseUrl: string, loginUrl: string,
 *           agentToken: string, dataDir: string, output: string[] }} */
let daemon;
let browser;
let context;
let page;
const pageErrors = [];
const dialogs = [];

// ---------------------------------------------------------------------------------------------
// Harness.




/** Sends an agent's check; resolves with {status, body} once the daemon answers. */
function sendCheck(body, d = daemon) {
  const request = fetch(`${d.baseUrl}/v1/check`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${d.agentToken}` },
    body: JSON.stringify(body),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));
  // Surface an early failure (bad token, bad body) instead of a UI timeout.
  request.catch(() => {});
  return withTimeout(request, CHECK_TIMEOUT_MS + (body.wait_ms || 0), `POST /v1/check ${body.tool_use_id}`);
}

function bashCheck(toolUseId, command, extra = {}) {
  return {
    tool: 'Bash',
    input: { command, ...extra },
    session_id: 'e2e',
    agent: 'e2e-agent',
    tool_use_id: toolUseId,
    cwd: '/work/demo',
    wait_ms: 30_000,
  };
}

const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

async function waitVisible(locator, what) {
  await locator.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS }).catch((e) => {
    throw new Error(`${what} did not appear: ${e.message}\n--- daemon output ---\n${daemon.output.join('\n')}`);
  });
}

/** Waits for the pending row of `command`, opens it (nothing opens by itself), and waits for
 *  the modal to show it. */
async function openRow(command, p = page) {
  const row = p.locator('[data-testid="pending-row"]', { hasText: command });
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.locator('button').click();
  await waitForModalWith(command, p);
}

/** Waits for the modal to show the action whose summary is `command`. */
async function waitForModalWith(command, p = page) {
  await p.locator('[data-testid="modal"]').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  if (p !== page) {
    await p.waitForFunction(
      (cmd) => document.querySelector('[data-testid="modal-summary"]')?.textContent.includes(cmd),
      command, { timeout: UI_TIMEOUT_MS },
    );
    return;
  }
  await waitVisible(byTestId('modal'), 'the approval modal');
  await page.waitForFunction(
    (cmd) => document.querySelector('[data-testid="modal-summary"]')?.textContent.includes(cmd),
    command, { timeout: UI_TIMEOUT_MS },
  );
}

async function pendingFromPage() {
  return page.evaluate(async () => {
    const res = await fetch('/v1/actions?status=pending&limit=200', { credentials: 'same-origin' });
    return (await res.json()).actions;
  });
}

async function screenshot(name) {
  const path = join(SCREENSHOT_DIR, `gatehouse-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// ---------------------------------------------------------------------------------------------
// Setup.

before(async () => {
  daemon = await startDaemon({ policy: POLICY, config: CONFIG });
  await assertServesCurrentAssets(daemon.baseUrl);
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  page.on('dialog', (dialog) => { dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });

  const res = await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  assert.equal(new URL(page.url()).pathname, '/', 'login redirects to the dashboard');
  assert.ok(res && res.ok(), `dashboard loads (status ${res && res.status()})`);
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
    { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
}, { timeout: TEST_TIMEOUT_MS });

// ---------------------------------------------------------------------------------------------
// Tests.

test('approving in the modal allows the waiting check; the input renders as text', { timeout: TEST_TIMEOUT_MS }, async () => {
  const command = 'git push origin main';
  const check = sendCheck(bashCheck('t1', command, { note: XSS }));

  await openRow(command);
  const modal = byTestId('modal');
  assert.equal(await modal.getAttribute('role'), 'dialog');
  assert.equal(await modal.getAttribute('aria-modal'), 'true');
  assert.equal(await byTestId('modal-tool').textContent(), 'Bash');
  assert.equal(await byTestId('modal-summary').textContent(), command);

  // The agent-controlled markup is shown literally, and never becomes an element.
  const input = await byTestId('modal-input').textContent();
  assert.ok(input.includes(`"command": "${command}"`), input);
  assert.ok(input.includes(XSS), `input shows the markup literally: ${input}`);
  assert.equal(await page.locator('img').count(), 0, 'no <img> element was created');

  // Rule and reason are the daemon's own.
  const [action] = (await pendingFromPage()).filter((a) => a.tool_use_id === 't1');
  assert.ok(action, 'the daemon lists the paused action');
  assert.equal(await byTestId('modal-reason').textContent(), action.reason || '—');
  assert.equal(action.rule_id, 'pause-bash');
  assert.equal(await byTestId('modal-rule').textContent(), 'pause-bash');
  assert.match(await byTestId('modal-reason').textContent(), /shell commands need a person's approval/);
  assert.equal(await byTestId('modal-session').textContent(), 'e2e');
  assert.equal(await byTestId('modal-cwd').textContent(), '/work/demo');
  assert.match(await byTestId('modal-deadline').textContent(), /^\d+s left$|^\d+m \d+s left$/);
  // Tier 2 (the fixed test classifier) scored it before it was shown.
  assert.equal(action.tier2_status, 'scored');
  const tier2 = await byTestId('modal-tier2').textContent();
  // Advisory, and never worded as a verdict.
  assert.match(tier2, /classifier: 0\.91 \(advisory\)/);
  assert.ok(tier2.includes(action.tier2.model), tier2);

  // The pending list shows it too; the focus is on the heading, not on Approve.
  const row = page.locator(`[data-testid="pending-row"][data-action-id="${action.action_id}"]`);
  await waitVisible(row, 'the pending row');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'modal-tool');

  console.log(`screenshot: ${await screenshot('modal-light')}`);
  await page.emulateMedia({ colorScheme: 'dark' });
  console.log(`screenshot: ${await screenshot('modal-dark')}`);
  await page.emulateMedia({ colorScheme: 'light' });

  await byTestId('approve').click();
  const { status, body } = await check;
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.verdict, 'allow', JSON.stringify(body));
  assert.equal(body.decided_by, 'human', JSON.stringify(body));
  assert.equal(body.action_id, action.action_id);

  await modal.waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  assert.deepEqual(dialogs, [], 'no alert() ran');
});

test('denying in the modal rejects the waiting check', { timeout: TEST_TIMEOUT_MS }, async () => {
  const command = 'rm -rf ./build';
  const check = sendCheck(bashCheck('t2', command));
  await openRow(command);
  await byTestId('note').fill('not during the release freeze');
  await byTestId('deny').click();

  const { status, body } = await check;
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.verdict, 'reject', JSON.stringify(body));
  assert.equal(body.decided_by, 'human', JSON.stringify(body));
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });

  // The recent-decisions list records it with the note.
  const recent = page.locator(`[data-testid="recent-row"][data-action-id="${body.action_id}"]`);
  await waitVisible(recent, 'the recent-decision row');
  const text = await recent.textContent();
  assert.match(text, /Denied/);
  assert.match(text, /not during the release freeze/);
});

test('a decided action leaves the pending list; Esc dismisses and no key decides', { timeout: TEST_TIMEOUT_MS }, async () => {
  const command = 'curl -X POST https://example.invalid/deploy';
  const check = sendCheck(bashCheck('t3', command));
  await openRow(command);
  const [action] = (await pendingFromPage()).filter((a) => a.tool_use_id === 't3');
  assert.ok(action, 'the daemon lists the paused action');
  const row = page.locator(`[data-testid="pending-row"][data-action-id="${action.action_id}"]`);
  await waitVisible(row, 'the pending row');

  // Esc closes the modal without deciding: the action stays pending.
  await page.keyboard.press('Escape');
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  assert.equal(await row.count(), 1, 'still pending after Esc');
  assert.ok((await pendingFromPage()).some((a) => a.action_id === action.action_id));

  // Selecting the row reopens it; no key approves (`a`, Enter, Space land on nothing).
  await row.locator('button').click();
  await waitForModalWith(command);
  for (const key of ['a', 'A', 'Enter', ' ', 'd']) await page.keyboard.press(key);
  assert.ok((await pendingFromPage()).some((a) => a.action_id === action.action_id),
    'still pending after key presses');
  await byTestId('approve').click();

  const { body } = await check;
  assert.equal(body.verdict, 'allow', JSON.stringify(body));
  assert.equal(body.decided_by, 'human', JSON.stringify(body));
  await row.waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  assert.equal(await byTestId('pending-count').textContent(), '0 pending');
  assert.ok(!(await pendingFromPage()).some((a) => a.action_id === action.action_id));
});

test('after one decision the modal closes: the next action waits to be chosen', { timeout: TEST_TIMEOUT_MS }, async () => {
  const first = sendCheck(bashCheck('t4', 'make release'));
  await openRow('make release');
  const second = sendCheck(bashCheck('t5', 'npm publish'));
  await page.waitForSelector('[data-testid="pending-row"]:nth-child(2)', { timeout: UI_TIMEOUT_MS });
  // The one on screen stays on screen while the second one queues behind it.
  assert.equal(await byTestId('modal-summary').textContent(), 'make release');

  await byTestId('deny').click();
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  assert.equal((await first).body.verdict, 'reject');
  // No auto-advance: npm publish is listed, not opened.
  assert.equal(await byTestId('modal').isVisible(), false);
  await openRow('npm publish');
  await byTestId('approve').click();

  assert.equal((await first).body.verdict, 'reject');
  assert.equal((await second).body.verdict, 'allow');
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
});

test('a decision made elsewhere closes the modal and says so', { timeout: TEST_TIMEOUT_MS }, async () => {
  const check = sendCheck(bashCheck('t7', 'docker system prune -af'));
  await openRow('docker system prune -af');
  const [action] = (await pendingFromPage()).filter((a) => a.tool_use_id === 't7');
  assert.ok(action, 'the daemon lists the paused action');

  // Someone else (the CLI, with the approver token) denies it first.
  const { approverToken } = daemon;
  const res = await fetch(`${daemon.baseUrl}/v1/actions/${encodeURIComponent(action.action_id)}/decision`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${approverToken}` },
    body: JSON.stringify({ decision: 'deny', note: 'from the CLI' }),
  });
  assert.equal(res.status, 200, await res.text());
  assert.equal((await check).body.verdict, 'reject');

  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  const toast = page.locator('[data-testid="toast"]', { hasText: 'denied elsewhere' });
  await waitVisible(toast, 'the "decided elsewhere" notice');
  const recent = page.locator(`[data-testid="recent-row"][data-action-id="${action.action_id}"]`);
  await waitVisible(recent, 'the recent-decision row');
  assert.match(await recent.textContent(), /Denied.*from the CLI|from the CLI.*Denied/s);
});

test('a page (re)loaded while an action waits lists it without opening it', { timeout: TEST_TIMEOUT_MS }, async () => {
  const check = sendCheck(bashCheck('t6', 'terraform apply'));
  await openRow('terraform apply');
  await page.reload({ timeout: UI_TIMEOUT_MS });
  const row = page.locator('[data-testid="pending-row"]', { hasText: 'terraform apply' });
  await waitVisible(row, 'the pending row after a reload');
  assert.equal(await byTestId('modal').isVisible(), false, 'nothing opens by itself');
  assert.equal(await page.locator('[data-testid="pending-row"]').count(), 1);
  await openRow('terraform apply');
  await byTestId('approve').click();
  assert.equal((await check).body.verdict, 'allow');
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
});

test('an action whose deadline passes leaves the modal and is recorded as timed out', { timeout: TEST_TIMEOUT_MS }, async () => {
  // A daemon of its own, with a short approval deadline and no classifier.
  const short = await startDaemon({
    policy: POLICY,
    config: '[approvals]\ndeadline_ms = 3000\n\n[classifier]\nkind = "none"\n',
  });
  const shortContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const other = await shortContext.newPage();
    const errors = [];
    other.on('pageerror', (err) => errors.push(err.message));
    await other.goto(short.loginUrl, { timeout: UI_TIMEOUT_MS });
    await other.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
      { timeout: UI_TIMEOUT_MS });

    const check = sendCheck(bashCheck('t8', 'sleep 1000'), short);
    const modal = other.locator('[data-testid="modal"]');
    await openRow('sleep 1000', other);
    assert.match(await other.locator('[data-testid="modal-deadline"]').textContent(), /^\ds left$|^expired$/);
    assert.equal(await other.locator('[data-testid="modal-tier2"]').textContent(), 'no classifier configured');

    const { body } = await check;
    assert.equal(body.verdict, 'reject', JSON.stringify(body));
    assert.equal(body.decided_by, 'timeout', JSON.stringify(body));
    await modal.waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
    await other.locator('[data-testid="toast"]', { hasText: 'deadline passed' })
      .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    const recent = other.locator(`[data-testid="recent-row"][data-action-id="${body.action_id}"]`);
    await recent.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    assert.match(await recent.textContent(), /Timed out/);
    assert.equal(await other.locator('[data-testid="pending-row"]').count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await shortContext.close();
    await stopDaemon(short);
  }
});

test('without a session the page says how to sign in', { timeout: TEST_TIMEOUT_MS }, async () => {
  const anonymous = await browser.newContext();
  try {
    const other = await anonymous.newPage();
    await other.goto(`${daemon.baseUrl}/`, { timeout: UI_TIMEOUT_MS });
    const banner = other.locator('[data-testid="banner"]');
    await banner.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    assert.match(await banner.textContent(), /Not signed in: open the login link printed by gatehouse serve, or run gatehouse dashboard/);
    assert.equal(await other.locator('[data-testid="connection-status"]').getAttribute('data-state'), 'signed-out');
    const path = join(SCREENSHOT_DIR, 'gatehouse-signed-out.png');
    await other.screenshot({ path });
    console.log(`screenshot: ${path}`);
  } finally {
    await anonymous.close();
  }
});

test('the page ran without script errors or CSP violations', async () => {
  assert.deepEqual(pageErrors, []);
  assert.equal(await byTestId('banner').isVisible(), false, 'no error banner');
  console.log(`screenshot: ${await screenshot('lists')}`);
});

test('a policy file that fails to reload is shown, with its error, until a good one returns', { timeout: TEST_TIMEOUT_MS }, async () => {
  const policyPath = join(daemon.dataDir, 'policy.toml');
  const banner = byTestId('health-banner');
  assert.equal(await banner.isVisible(), false, 'no health banner while the policy is good');

  await writeFile(policyPath, `${POLICY}\n[[rules]]\nid = "broken"\neffect = "perhaps"\n`);
  await waitVisible(banner, 'the health banner for a refused policy');
  const detail = await byTestId('health-detail').first().textContent();
  assert.match(detail, /line \d+/, `the error names its line: ${detail}`);
  assert.match(await banner.textContent(), /last good policy still decides/);
  await screenshot('policy-error');

  await writeFile(policyPath, POLICY);
  await banner.waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
});
