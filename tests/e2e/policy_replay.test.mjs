// Browser end-to-end test of the dashboard's policy view against the real daemon: a candidate
// policy is replayed over the actions the daemon recorded (`POST /v1/policy/replay`), the view
// shows how many would be newly allowed (highlighted), paused and rejected with examples, a
// broken candidate shows the parser's message, and "Push this version" appears only for the
// text just replayed and pushes it (`POST /v1/policy/versions`), putting it in force.
//
// Run: `cargo build -p gatehouse && (cd tests/e2e && node --test policy_replay.test.mjs)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon } from './support/daemon.mjs';

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

const POLICY = `# policy replay e2e: reads are allowed, rm is rejected, everything else waits for a person.
default = "pause"

[[rules]]
id = "read-ok"
effect = "allow"
tool = "Read"

[[rules]]
id = "no-rm"
effect = "reject"
tool = "Bash"
command = { program = "rm" }
`;

// The candidate: reads become rejected, \`git status\` becomes allowed, rm stays rejected.
const CANDIDATE = `default = "pause"

[[rules]]
id = "no-read"
effect = "reject"
tool = "Read"

[[rules]]
id = "no-rm"
effect = "reject"
tool = "Bash"
command = { program = "rm" }

[[rules]]
id = "git-status-ok"
effect = "allow"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "^git status$"
`;

// Paused actions wait an hour: none times out while the test runs.
const CONFIG = `[approvals]
deadline_ms = 3600000
`;

let daemon;
let browser;
let page;
const pageErrors = [];

async function call(path, token, body) {
  const res = await fetch(`${daemon.baseUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: res.status, body: json, text };
}

async function check(body, verdict) {
  const res = await call('/v1/check', daemon.agentToken, { wait_ms: 0, ...body });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.verdict, verdict, res.text);
  return res.body;
}

const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

async function waitForText(testId, pattern) {
  await page.waitForFunction(
    ([id, source]) => new RegExp(source).test(document.querySelector(`[data-testid="${id}"]`)?.textContent || ''),
    [testId, pattern.source], { timeout: UI_TIMEOUT_MS },
  ).catch(async (e) => {
    const now = await byTestId(testId).first().textContent().catch(() => '(absent)');
    throw new Error(`${testId} never matched ${pattern}: it reads ${JSON.stringify(now)} (${e.message})`);
  });
}

before(async () => {
  daemon = await startDaemon({ policy: POLICY, config: CONFIG });
  await assertServesCurrentAssets(daemon.baseUrl);
  await check({ tool: 'Read', input: { file_path: '/proj/src/main.rs' } }, 'allow');
  await check({ tool: 'Bash', input: { command: 'rm -rf build' } }, 'reject');
  await check({ tool: 'Bash', input: { command: 'git status' } }, 'pending');

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  const res = await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  assert.ok(res && res.ok(), `dashboard loads (status ${res && res.status()})`);
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
}, { timeout: TEST_TIMEOUT_MS });

test('a broken candidate shows the parser\'s message and offers no push', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.click('[data-testid="nav-policy"]');
  await byTestId('policy-view').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.match(page.url(), /#policy$/);
  assert.equal(await byTestId('policy-text').inputValue(), '', 'the textarea starts empty');
  assert.equal(await byTestId('policy-push').isVisible(), false, 'no push before a replay');

  await byTestId('policy-text').fill('default = "sometimes"\n');
  await byTestId('policy-replay').click();
  await waitForText('policy-error', /does not load/);
  assert.equal(await byTestId('policy-push').isVisible(), false, 'no push for a broken candidate');
  // The browser logs the refused request (400) itself: that one is expected, nothing else.
  assert.ok(pageErrors.every((e) => /status of 400/.test(e)), pageErrors.join('\n'));
  pageErrors.length = 0;
});

test('replay shows what would change, and push puts exactly the replayed text in force', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.click('[data-testid="nav-policy"]');
  await byTestId('policy-text').fill(CANDIDATE);
  await byTestId('policy-replay').click();
  await waitForText('policy-summary', /^3 recorded action\(s\) replayed; 2 would change\.$/);
  assert.equal(await byTestId('replay-newly_allowed-count').textContent(), '1');
  assert.equal(await byTestId('replay-newly_paused-count').textContent(), '0');
  assert.equal(await byTestId('replay-newly_rejected-count').textContent(), '1');
  const allowed = byTestId('replay-newly_allowed');
  assert.match(await allowed.getAttribute('class'), /replay-risky/, 'newly allowed is highlighted');
  assert.match(await allowed.textContent(), /git status/);
  assert.match(await allowed.textContent(), /pause \(default\) → allow \(git-status-ok\)/);
  assert.match(await byTestId('replay-newly_rejected').textContent(), /\/proj\/src\/main\.rs/);
  assert.match(await byTestId('replay-newly_rejected').getAttribute('class'), /^replay-change\s*$/, 'rejected is not the risky one');
  assert.equal(pageErrors.length, 0, pageErrors.join('\n'));

  // An edit after the replay takes the push away until the new text is replayed.
  await byTestId('policy-push').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await byTestId('policy-text').fill(`${CANDIDATE}\n# edited\n`);
  assert.equal(await byTestId('policy-push').isVisible(), false, 'an edited text was not replayed');
  await byTestId('policy-text').fill(CANDIDATE);
  await byTestId('policy-replay').click();
  await byTestId('policy-push').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });

  // Nothing pushed yet: replay changed nothing in force.
  const before = await call('/v1/policy/versions', daemon.approverToken);
  assert.equal(before.status, 200, before.text);
  await check({ tool: 'Read', input: { file_path: '/proj/README.md' } }, 'allow');

  await byTestId('policy-push').click();
  await waitForText('policy-pushed', /version \d+ is in force/);
  const history = await call('/v1/policy/versions', daemon.approverToken);
  assert.equal(history.status, 200, history.text);
  assert.equal(history.body.versions.length, before.body.versions.length + 1, history.text);
  const version = history.body.current;
  assert.ok(Number.isInteger(version), history.text);
  assert.equal(await byTestId('policy-pushed').textContent(), `Pushed: version ${version} is in force.`);
  const pushed = await call(`/v1/policy/versions/${version}`, daemon.approverToken);
  assert.equal(pushed.body.text, CANDIDATE, 'the text pushed is the text replayed');
  assert.equal(await byTestId('policy-push').isVisible(), false, 'pushed once');
  // The candidate is in force now.
  await check({ tool: 'Read', input: { file_path: '/proj/README.md' } }, 'reject');
  await check({ tool: 'Bash', input: { command: 'git status' } }, 'allow');
  assert.equal(pageErrors.length, 0, pageErrors.join('\n'));
});

test('the policy view works on a phone: a replay report does not overflow sideways', { timeout: TEST_TIMEOUT_MS }, async () => {
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  try {
    const p = await phone.newPage();
    const errors = [];
    p.on('pageerror', (err) => errors.push(err.message));
    const login = await call('/v1/login-codes', daemon.approverToken, {});
    assert.equal(login.status, 200, login.text);
    await p.goto(login.body.url);
    await p.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: UI_TIMEOUT_MS });
    await p.goto(`${daemon.baseUrl}/#policy`);
    await p.locator('[data-testid="policy-text"]').fill(POLICY);
    await p.locator('[data-testid="policy-replay"]').click();
    await p.locator('[data-testid="policy-report"]').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    const { scroll, width } = await p.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, width: window.innerWidth,
    }));
    assert.ok(scroll <= width + 1, `the policy view overflows sideways at ${width}px: ${scroll}px wide`);
    assert.deepEqual(errors, []);
  } finally {
    await phone.close();
  }
});
