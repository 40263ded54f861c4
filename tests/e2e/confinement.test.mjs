// Issue 11 in the dashboard: an action a rule allowed only confined shows the sandbox profile it
// runs in and what that allows (the ledger's confinement record); its outcome's sandbox denials
// show as findings on that action ("tried to read …/.ssh/id_rsa"); and a paused action whose
// client could not confine it says so in the approval dialog. The denial is real: the test runs
// `gatehouse sandbox run --profile build` over a planted fake secret in a fake HOME and posts the
// denial lines it printed, as the hooks do, to the outcomes API.
//
// Run: `cargo build -p gatehouse && (cd tests/e2e && node --test confinement.test.mjs)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  GATEHOUSE_BIN, assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon,
} from './support/daemon.mjs';

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

const POLICY = `default = "pause"

[[rules]]
id = "cargo-confined"
effect = "allow"
reason = "builds and tests run in the sandbox"
command = { program = "cargo", args_within = ["$CWD", "/tmp"] }
confine = "build"
`;

const CONFIG = `[approvals]
deadline_ms = 3600000
`;

let daemon;
let browser;
let page;
let scratch;
const pageErrors = [];
const seeded = {};

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

async function check(body) {
  const res = await call('/v1/check', daemon.agentToken, { wait_ms: 0, ...body });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function waitForText(testId, pattern) {
  await page.waitForFunction(
    ([id, source]) => new RegExp(source).test(document.querySelector(`[data-testid="${id}"]`)?.textContent || ''),
    [testId, pattern.source], { timeout: UI_TIMEOUT_MS },
  ).catch(async (e) => {
    const now = await page.locator(`[data-testid="${testId}"]`).first().textContent().catch(() => '(absent)');
    throw new Error(`${testId} never matched ${pattern}: it reads ${JSON.stringify(now)} (${e.message})`);
  });
}

/** Runs `cat ~/.ssh/id_rsa` confined by the build profile in a fake HOME; its denial lines. */
async function realDenials() {
  const home = join(scratch, 'home');
  const project = join(scratch, 'project');
  await mkdir(join(home, '.ssh'), { recursive: true });
  await mkdir(project, { recursive: true });
  await mkdir(join(scratch, 'tmp'), { recursive: true });
  await writeFile(join(home, '.ssh', 'id_rsa'), 'FAKE-SECRET-KEY\n');
  const run = spawnSync(GATEHOUSE_BIN, ['sandbox', 'run', '--profile', 'build', '--cwd', project, '--',
    '/bin/cat', join(home, '.ssh', 'id_rsa')], {
    env: { PATH: process.env.PATH, HOME: home, TMPDIR: join(scratch, 'tmp') },
    encoding: 'utf8', timeout: 30_000,
  });
  assert.notEqual(run.status, 0, `the secret was readable: ${run.stdout}`);
  assert.ok(!run.stdout.includes('FAKE-SECRET-KEY'), run.stdout);
  const denials = run.stderr.split('\n').filter((l) => l.startsWith('gatehouse sandbox: denied '));
  assert.ok(denials.some((l) => l.includes('read') && l.includes('id_rsa')),
    `a read of the secret is reported (status ${run.status}): ${run.stderr}`);
  return denials;
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-confine-'));
  daemon = await startDaemon({ policy: POLICY, config: CONFIG });
  await assertServesCurrentAssets(daemon.baseUrl);

  seeded.confined = await check({ tool: 'Bash', input: { command: 'cargo test' }, cwd: '/tmp',
    session_id: 'sess-confine', agent: 'claude-code', tool_use_id: 'tu-1', can_confine: true });
  assert.equal(seeded.confined.verdict, 'allow', JSON.stringify(seeded.confined));
  assert.equal(seeded.confined.confine?.profile, 'build', JSON.stringify(seeded.confined));
  seeded.denials = await realDenials();
  const outcome = await call('/v1/outcomes', daemon.agentToken, {
    tool: 'Bash', session_id: 'sess-confine', tool_use_id: 'tu-1', ran: true, exit_code: 1,
    duration_ms: 40, findings: seeded.denials,
  });
  assert.equal(outcome.status, 200, outcome.text);
  seeded.fallback = await check({ tool: 'Bash', input: { command: 'cargo build' }, cwd: '/tmp',
    session_id: 'sess-confine', agent: 'gemini', tool_use_id: 'tu-2', can_confine: false });
  assert.equal(seeded.fallback.verdict, 'pending', JSON.stringify(seeded.fallback));

  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS * 2 });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, { timeout: TEST_TIMEOUT_MS });

test('a confined action shows its profile, what it allows, and its sandbox denials as findings', { timeout: TEST_TIMEOUT_MS }, async () => {
  const view = await call(`/v1/actions/${seeded.confined.action_id}`, daemon.approverToken);
  assert.equal(view.body.confinement?.applied, 'confined', view.text);

  await page.click('[data-testid="nav-ledger"]');
  const row = page.locator(`[data-testid="ledger-row"][data-action-id="${seeded.confined.action_id}"] button`);
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.click();
  await waitForText('detail-id', new RegExp(seeded.confined.action_id));
  await waitForText('detail-confinement', /runs confined: sandbox profile build/);
  await waitForText('detail-confinement', /writes only \{project\} \{tmp\}.*no network/);
  await waitForText('detail-history', /Outcome reported/);
  await waitForText('detail-history', /tried to read \S*\.ssh\/id_rsa/);
  await page.click('[data-testid="detail-close"]');
  assert.deepEqual(pageErrors, []);
});

test('a paused action whose client cannot confine it says so in the approval dialog', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.click('[data-testid="nav-inbox"]');
  const row = page.locator('[data-testid="pending-row"]', { hasText: 'cargo build' });
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.click();
  await waitForText('modal-confinement', /required sandbox profile build, but this client cannot confine it: pause instead/);
  assert.deepEqual(pageErrors, []);
});
