// Browser end-to-end test of the dashboard's review view against the real daemon: a rules-allowed
// action the classifier flags appears in the queue, a reviewer labels it by clicking, the label is
// in the ledger (read back through the API), and the item moves to "labelled"; a label recorded
// elsewhere (the CLI's approver token) reaches the page over the WebSocket.
//
// Run: `cargo build -p gatehouse && (cd tests/e2e && node --test review.test.mjs)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium),
// E2E_SCREENSHOT_DIR (default the OS temp dir).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon,
} from './support/daemon.mjs';

const SCREENSHOT_DIR = process.env.E2E_SCREENSHOT_DIR || tmpdir();

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 60_000;

const POLICY = `# review e2e policy: Read is allowed, everything else waits for a person.
default = "pause"

[[rules]]
id = "read-ok"
effect = "allow"
tool = "Read"
`;

// Every action scores 0.91: an allowed Read is a disagreement (0.91 >= 0.8).
const CONFIG = `[classifier]
kind = "fixed"
score = 0.91
label = "malicious"
flag_threshold = 0.55
disagreement_threshold = 0.8
`;

const XSS = '<img src=x onerror=alert(1)>';

let daemon;
let browser;
let page;
const pageErrors = [];
const dialogs = [];




/** An HTTP call with a bearer token, from the test (the agent, or the CLI's approver token). */
async function call(path, token, body) {
  const res = await fetch(`${daemon.baseUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** A GET through the page's own session cookie: what the dashboard itself can read. */
function readFromPage(path) {
  return page.evaluate(async (p) => {
    const res = await fetch(p, { credentials: 'same-origin' });
    return { status: res.status, body: await res.json() };
  }, path);
}

const byTestId = (id) => page.locator(`[data-testid="${id}"]`);
const reviewRow = (id) => page.locator(`[data-testid="review-row"][data-action-id="${id}"]`);

async function waitVisible(locator, what) {
  await locator.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS }).catch((e) => {
    throw new Error(`${what} did not appear: ${e.message}\n--- daemon output ---\n${daemon.output.join('\n')}`);
  });
}

async function waitForText(testId, pattern) {
  await page.waitForFunction(
    ([id, source]) => new RegExp(source).test(document.querySelector(`[data-testid="${id}"]`)?.textContent || ''),
    [testId, pattern.source], { timeout: UI_TIMEOUT_MS },
  );
}

before(async () => {
  daemon = await startDaemon({ policy: POLICY, config: CONFIG });
  await assertServesCurrentAssets(daemon.baseUrl);
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  page.on('dialog', (dialog) => { dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });
  const res = await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  assert.ok(res && res.ok(), `dashboard loads (status ${res && res.status()})`);
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
    { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
}, { timeout: TEST_TIMEOUT_MS });

test('a disagreement is labelled from the review view and recorded in the ledger', { timeout: TEST_TIMEOUT_MS }, async () => {
  await waitForText('review-counts', /^0 to label · 0 labelled/);
  // The thresholds in force are shown.
  await waitForText('review-thresholds', /flag ≥ 0\.55 · disagreement ≥ 0\.80 · model fixed/);

  const path = `/tmp/${XSS}`;
  const check = await call('/v1/check', daemon.agentToken,
    { tool: 'Read', input: { file_path: path }, session_id: 'review-e2e', agent: 'e2e-agent' });
  assert.equal(check.status, 200, JSON.stringify(check.body));
  assert.equal(check.body.verdict, 'allow');
  const id = check.body.action_id;

  // The detached score lands, the page is told, and the disagreement is listed.
  const row = reviewRow(id);
  await waitVisible(row, 'the disagreement in the review queue');
  assert.equal(await row.getAttribute('data-reason'), 'disagreement');
  assert.equal(await row.getAttribute('data-label'), '');
  const text = await row.textContent();
  assert.match(text, /rules allowed, classifier flagged/);
  assert.match(text, /rule read-ok/);
  assert.match(text, /model fixed/);
  assert.match(text, /classifier: 0\.91 \(advisory\)/);
  assert.match(text, /Allowed by rule/);
  assert.equal(await row.locator('[data-testid="review-summary"]').textContent(), path);
  assert.ok((await row.locator('[data-testid="review-input"]').textContent()).includes(XSS));
  assert.equal(await page.locator('img').count(), 0, 'the agent-controlled markup stays text');
  await waitForText('review-counts', /^1 to label · 0 labelled/);
  const shot = join(SCREENSHOT_DIR, 'gatehouse-review.png');
  await byTestId('review-panel').screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);

  await row.locator('[data-testid="label-malicious"]').click();
  await row.waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
  await waitForText('review-counts', /^0 to label · 1 labelled/);

  // In the ledger: the action's history holds the label, with the person the dashboard session belongs to (the owner) as its reviewer.
  const history = await readFromPage(`/v1/actions/${id}/history`);
  assert.equal(history.status, 200, JSON.stringify(history.body));
  const labels = history.body.history.filter((e) => e.kind === 'labelled');
  assert.deepEqual(labels.map((e) => [e.detail.label, e.detail.reviewer]), [['malicious', 'owner']]);
  const labelled = await readFromPage('/v1/review?status=labelled');
  assert.deepEqual(labelled.body.items.map((i) => [i.action.action_id, i.label.label]), [[id, 'malicious']]);

  // The "Labelled" filter lists it with its label.
  await byTestId('review-filter-labelled').click();
  await waitVisible(row, 'the labelled item');
  assert.equal(await row.getAttribute('data-label'), 'malicious');
  assert.equal(await byTestId('review-filter-labelled').getAttribute('aria-pressed'), 'true');

  // Relabelled elsewhere (the CLI's approver token): the page follows over the WebSocket.
  const relabel = await call(`/v1/actions/${id}/label`, daemon.approverToken, { label: 'benign' });
  assert.equal(relabel.status, 200, JSON.stringify(relabel.body));
  await page.waitForSelector(`[data-testid="review-row"][data-action-id="${id}"][data-label="benign"]`,
    { timeout: UI_TIMEOUT_MS });

  assert.deepEqual(dialogs, [], 'no alert() ran');
  assert.deepEqual(pageErrors, []);
});

test('the approval modal shows the thresholds', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiting = call('/v1/check', daemon.agentToken,
    { tool: 'Bash', input: { command: 'git push' }, session_id: 'review-e2e', wait_ms: 30_000 });
  // Nothing opens by itself: the person opens the row.
  const row = page.locator('[data-testid="pending-row"]', { hasText: 'git push' });
  await waitVisible(row, 'the pending row');
  await row.locator('button').click();
  await waitVisible(byTestId('modal'), 'the approval modal');
  await waitForText('modal-thresholds', /flag ≥ 0\.55 · disagreement ≥ 0\.80/);
  await byTestId('deny').click();
  const { body } = await waiting;
  assert.equal(body.verdict, 'reject', JSON.stringify(body));
  assert.deepEqual(pageErrors, []);
});
