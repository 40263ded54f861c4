// Browser end-to-end test of the dashboard's console views against the real daemon: the ledger
// browser (filters, search, paging, export as JSONL and CSV, an action's whole history), the
// sessions list and a session's timeline, and the overview — whose numbers are checked against
// the ledger itself (its export, computed independently here). The daemon is seeded with known
// checks through the agent API, decisions through the approver API, and an outcome with sandbox
// findings through the outcomes API. Every view is also opened at a phone's viewport: nothing
// may overflow sideways, and screenshots are saved to target/test-artifacts/console/.
//
// Run: `cargo build -p gatehouse && (cd tests/e2e && node --test console.test.mjs)`.
// Env: GATEHOUSE_BIN (default target/debug/gatehouse), CHROMIUM_PATH (default /usr/bin/chromium),
// E2E_ARTIFACT_DIR (default REPO/target/test-artifacts/console).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  REPO_ROOT, assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon,
} from './support/daemon.mjs';

const ARTIFACT_DIR = process.env.E2E_ARTIFACT_DIR || join(REPO_ROOT, 'target/test-artifacts/console');
const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;

const POLICY = `# console e2e policy: reads are allowed, rm is rejected, everything else waits for a person.
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

// Every action scores 0.42 (the classifier is a fixed stand-in: no model runs here).
// Paused actions wait an hour: none times out while the test runs.
const CONFIG = `[approvals]
deadline_ms = 3600000

[classifier]
kind = "fixed"
score = 0.42
label = "benign"
flag_threshold = 0.9
disagreement_threshold = 0.95
`;

const XSS = '<img src=x onerror=alert(1)>';
/** Reads in the "bulk" session: more than one page of the browser (50). */
const BULK = 56;

let daemon;
let browser;
let context;
let page;
const pageErrors = [];
const dialogs = [];
/** What the seed recorded, by name. */
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
  return { status: res.status, body: json, text, headers: res.headers };
}

async function check(body) {
  const res = await call('/v1/check', daemon.agentToken, { wait_ms: 0, ...body });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function decide(id, decision, note) {
  const action = await call(`/v1/actions/${id}`, daemon.approverToken);
  const res = await call(`/v1/actions/${id}/decision`, daemon.approverToken,
    { decision, action_hash: action.body.action_hash, ...(note ? { note } : {}) });
  assert.equal(res.status, 200, res.text);
}

/** Every action the ledger holds, through the export (JSONL), oldest first. */
async function ledgerRows(query = '') {
  const res = await call(`/v1/ledger/export?format=jsonl${query ? `&${query}` : ''}`, daemon.approverToken);
  assert.equal(res.status, 200, res.text);
  return res.text.split('\n').filter(Boolean).map((line) => JSON.parse(line)).sort((a, b) => a.seq - b.seq);
}

const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

async function waitForText(testId, pattern) {
  await page.waitForFunction(
    ([id, source]) => new RegExp(source).test(document.querySelector(`[data-testid="${id}"]`)?.textContent || ''),
    [testId, pattern.source], { timeout: UI_TIMEOUT_MS },
  ).catch(async (e) => {
    const now = await page.locator(`[data-testid="${testId}"]`).first().textContent().catch(() => '(absent)');
    throw new Error(`${testId} never matched ${pattern}: it reads ${JSON.stringify(now)} (${e.message})`);
  });
}

/** Ledger rows on the page once the browser has finished reading. */
async function shownLedgerIds() {
  await page.waitForSelector('[data-testid="ledger-status"][data-state="ready"], [data-testid="ledger-status"][data-state="error"]',
    { timeout: UI_TIMEOUT_MS });
  return page.locator('[data-testid="ledger-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.actionId));
}

/** Fills the filter form (name → value; everything else cleared) and applies it. */
async function applyFilter(values) {
  await page.click('[data-testid="nav-ledger"]');
  await page.click('[data-testid="filter-clear"]');
  await page.waitForSelector('[data-testid="ledger-status"][data-state="ready"]', { timeout: UI_TIMEOUT_MS });
  for (const [name, value] of Object.entries(values)) {
    const field = page.locator(`#ledger-filters [name="${name}"]`);
    if (await field.evaluate((n) => n.tagName === 'SELECT')) await field.selectOption(value);
    else await field.fill(value);
  }
  await page.click('[data-testid="filter-apply"]');
  return shownLedgerIds();
}

async function noSidewaysOverflow(what) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  }));
  assert.ok(scroll <= width + 1, `${what} overflows sideways at ${width}px: ${scroll}px wide`);
}

before(async () => {
  daemon = await startDaemon({ policy: POLICY, config: CONFIG });
  await assertServesCurrentAssets(daemon.baseUrl);

  // The seed: two agents' sessions in two projects, and one long session.
  const t = (n) => `tu-${n}`;
  seeded.readAlpha = await check({ tool: 'Read', input: { file_path: '/proj/alpha/src/main.rs' },
    session_id: 'sess-alpha', agent: 'claude-code', cwd: '/proj/alpha', tool_use_id: t(1) });
  seeded.readAlphaSub = await check({ tool: 'Read', input: { file_path: '/proj/alpha/sub/README.md' },
    session_id: 'sess-alpha', agent: 'claude-code', cwd: '/proj/alpha/sub', tool_use_id: t(2) });
  seeded.rm = await check({ tool: 'Bash', input: { command: 'rm -rf build' },
    session_id: 'sess-alpha', agent: 'claude-code', cwd: '/proj/alpha', tool_use_id: t(3) });
  seeded.quoted = await check({ tool: 'Bash', input: { command: 'echo "needle in a haystack" 100%' },
    session_id: 'sess-alpha', agent: 'claude-code', cwd: '/proj/alpha', tool_use_id: t(4) });
  seeded.approved = await check({ tool: 'Bash', input: { command: 'cargo publish --dry-run' },
    session_id: 'sess-alpha', agent: 'claude-code', cwd: '/proj/alpha', tool_use_id: t(5) });
  seeded.denied = await check({ tool: 'Bash', input: { command: 'git push --force' },
    session_id: 'sess-beta', agent: 'codex', cwd: '/proj/alphabet', tool_use_id: t(6) });
  seeded.waiting = await check({ tool: 'Bash', input: { command: 'cargo publish --dry-run' },
    session_id: 'sess-beta', agent: 'codex', cwd: '/proj/alphabet', tool_use_id: t(7) });
  seeded.xss = await check({ tool: 'Read', input: { file_path: `/proj/alphabet/${XSS}` },
    session_id: 'sess-beta', agent: 'codex', cwd: '/proj/alphabet', tool_use_id: t(8) });
  seeded.rm2 = await check({ tool: 'Bash', input: { command: 'rm notes.txt' },
    session_id: 'sess-beta', agent: 'codex', cwd: '/proj/alphabet', tool_use_id: t(9) });
  for (const [name, verdict] of [['rm', 'reject'], ['approved', 'pending'], ['denied', 'pending'],
    ['waiting', 'pending'], ['readAlpha', 'allow']]) {
    assert.equal(seeded[name].verdict, verdict, `${name}: ${JSON.stringify(seeded[name])}`);
  }
  await decide(seeded.approved.action_id, 'approve', 'dry run is fine');
  await decide(seeded.denied.action_id, 'deny', 'never force-push');
  const outcome = await call('/v1/outcomes', daemon.agentToken, {
    tool: 'Read', session_id: 'sess-alpha', tool_use_id: t(1), ran: true, exit_code: 0, duration_ms: 12,
    findings: ['gatehouse sandbox: denied write /etc/passwd'],
  });
  assert.equal(outcome.status, 200, outcome.text);
  for (let i = 0; i < BULK; i += 1) {
    await check({ tool: 'Read', input: { file_path: `/bulk/file-${String(i).padStart(3, '0')}.txt` },
      session_id: 'sess-bulk', agent: 'claude-code', cwd: '/bulk', tool_use_id: `bulk-${i}` });
  }

  browser = await launchChromium();
  await mkdir(ARTIFACT_DIR, { recursive: true });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light', acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  page.on('dialog', (dialog) => { dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });
  const res = await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  assert.ok(res && res.ok(), `dashboard loads (status ${res && res.status()})`);
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS * 2 });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
}, { timeout: TEST_TIMEOUT_MS });

test('the ledger browser filters by verdict, who decided, tool, agent, session, project and score', { timeout: TEST_TIMEOUT_MS }, async () => {
  const all = await ledgerRows();
  assert.equal(all.length, 9 + BULK);
  const expect = (pred) => all.filter(pred).map((r) => r.action_id).sort();
  const cases = [
    [{ verdict: 'reject' }, (r) => r.verdict === 'reject'],
    [{ verdict: 'pending' }, (r) => r.verdict === 'pending'],
    [{ decided_by: 'human' }, (r) => r.decision && r.decision.decided_by === 'human'],
    [{ paused: 'true', tool: 'Bash' }, (r) => r.tool === 'Bash' && (r.verdict === 'pending' || Boolean(r.decision))],
    [{ tool: 'Bash' }, (r) => r.tool === 'Bash'],
    [{ agent: 'codex' }, (r) => r.agent === 'codex'],
    [{ session: 'sess-alpha' }, (r) => r.session_id === 'sess-alpha'],
    // A project is its directory and below: /proj/alpha holds /proj/alpha/sub, not /proj/alphabet.
    [{ cwd: '/proj/alpha' }, (r) => r.cwd === '/proj/alpha' || r.cwd === '/proj/alpha/sub'],
    [{ rule: 'no-rm', agent: 'codex' }, (r) => r.rule_id === 'no-rm' && r.agent === 'codex'],
    [{ min_score: '0.9' }, () => false],
    [{ min_score: '0.4', max_score: '0.5', session: 'sess-beta' }, (r) => r.session_id === 'sess-beta' && r.tier2 && r.tier2.score === 0.42],
  ];
  for (const [filter, pred] of cases) {
    const want = expect(pred);
    const shown = (await applyFilter(filter)).sort();
    assert.deepEqual(shown, want, `filter ${JSON.stringify(filter)}`);
    if (want.length === 0) assert.ok(await byTestId('ledger-empty').isVisible(), 'an empty result says so');
    // The filter is in the address: a reload shows the same rows.
    assert.match(page.url(), /#ledger\?/);
  }
  const reloaded = page.url();
  await page.goto('about:blank');
  await page.goto(reloaded);
  assert.deepEqual((await shownLedgerIds()).sort(), expect((r) => r.session_id === 'sess-beta' && r.tier2 && r.tier2.score === 0.42));
  // The score a row shows is the classifier's, advisory.
  await waitForText('ledger-list', /classifier: 0\.42 \(advisory\)/);
});

test('search finds words in inputs as typed, treats % and _ as text, and shows hostile input as text', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.deepEqual(await applyFilter({ q: 'echo "needle' }), [seeded.quoted.action_id]);
  assert.deepEqual(await applyFilter({ q: '100%' }), [seeded.quoted.action_id]);
  assert.deepEqual(await applyFilter({ q: '%' }), [seeded.quoted.action_id]);
  assert.deepEqual(await applyFilter({ q: 'file-0_5' }), [], '_ is not a wildcard');
  assert.deepEqual(await applyFilter({ q: 'PUBLISH --DRY' }).then((ids) => ids.sort()),
    [seeded.approved.action_id, seeded.waiting.action_id].sort(), 'case-insensitive');
  assert.deepEqual(await applyFilter({ q: 'onerror=alert' }), [seeded.xss.action_id]);
  await waitForText('ledger-list', /<img src=x onerror=alert\(1\)>/);
  assert.equal(await page.locator('#ledger-list img').count(), 0, 'no element was made from the input');
  assert.deepEqual(dialogs, []);
});

test('paging: the first page holds 50 actions, newest first, and "Older actions" reads the rest', { timeout: TEST_TIMEOUT_MS }, async () => {
  const ids = await applyFilter({ session: 'sess-bulk' });
  assert.equal(ids.length, 50);
  const bulk = (await ledgerRows('session=sess-bulk')).map((r) => r.action_id).reverse();
  assert.deepEqual(ids, bulk.slice(0, 50), 'newest first');
  await waitForText('ledger-status', /50 actions shown · .*more below/);
  await page.click('[data-testid="ledger-more"]');
  await waitForText('ledger-status', new RegExp(`${BULK} actions shown · end of the ledger`));
  assert.deepEqual(await shownLedgerIds(), bulk);
  assert.ok(await byTestId('ledger-more').isHidden());
});

test('export downloads exactly the current filter, as JSONL and as CSV', { timeout: TEST_TIMEOUT_MS }, async () => {
  const shown = (await applyFilter({ tool: 'Bash' })).sort();
  const [jsonl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-jsonl"]')]);
  assert.match(jsonl.suggestedFilename(), /^gatehouse-ledger-\d+\.jsonl$/);
  const lines = (await readFile(await jsonl.path(), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.action_id).sort(), shown);
  for (const line of lines) assert.equal(line.tool, 'Bash');

  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-csv"]')]);
  assert.match(csv.suggestedFilename(), /\.csv$/);
  const text = await readFile(await csv.path(), 'utf8');
  const records = text.split('\r\n').filter(Boolean);
  assert.equal(records[0].split(',').slice(0, 4).join(','), 'seq,action_id,created_at_ms,tool');
  assert.equal(records.length, shown.length + 1);
  assert.ok(records.some((r) => r.includes('"{""command"":""echo \\""needle in a haystack\\"" 100%""}"')),
    `quotes are doubled in CSV: ${text}`);

  // Errors name their field and change nothing.
  const bad = await call('/v1/ledger/actions?verdict=maybe', daemon.approverToken);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.field, 'verdict');
  const unknown = await call('/v1/ledger/actions?colour=red', daemon.approverToken);
  assert.equal(unknown.status, 400, unknown.text);
  const agent = await call('/v1/ledger/actions', daemon.agentToken);
  assert.equal(agent.status, 403, 'the agent token cannot browse the ledger');
});

test("an action's whole history: check, score, decision with its note, outcome with sandbox findings", { timeout: TEST_TIMEOUT_MS }, async () => {
  await applyFilter({ session: 'sess-alpha', tool: 'Read' });
  await page.click(`[data-testid="ledger-row"][data-action-id="${seeded.readAlpha.action_id}"] button`);
  await waitForText('detail-id', new RegExp(seeded.readAlpha.action_id));
  await waitForText('detail-history', /Outcome reported/);
  const kinds = await page.locator('[data-testid="history-entry"]').evaluateAll((n) => n.map((e) => e.dataset.kind));
  for (const kind of ['recorded', 'scored', 'outcome']) assert.ok(kinds.includes(kind), `${kind} in ${kinds}`);
  await waitForText('detail-history', /sandbox finding: tried to write \/etc\/passwd \(denied\)/);
  await waitForText('detail-history', /ran, exit 0/);
  await page.click('[data-testid="detail-close"]');

  await applyFilter({ decided_by: 'human', verdict: 'reject' });
  await page.click(`[data-testid="ledger-row"][data-action-id="${seeded.denied.action_id}"] button`);
  await waitForText('detail-history', /Decided.*reject by human.*note: never force-push/);
  await waitForText('detail-verdict', /Denied/);
  // The session links to its timeline.
  await page.click('[data-testid="detail-session-link"]');
  await waitForText('timeline-session', /^sess-beta$/);
});

test('a session timeline shows what the agent did, oldest first, with outcomes and decisions', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.click('[data-testid="nav-sessions"]');
  await page.waitForSelector('[data-testid="session-row"]', { timeout: UI_TIMEOUT_MS });
  const sessions = await page.locator('[data-testid="session-row"]').evaluateAll((n) => n.map((e) => e.dataset.sessionId));
  assert.deepEqual(sessions, ['sess-bulk', 'sess-beta', 'sess-alpha'], 'most recently active first');
  // sess-alpha: two reads allowed, rm rejected, the echo still waiting, the publish approved.
  await waitForText('sessions-list', /5 actions · 3 allowed · 1 rejected · 2 asked a person · 1 waiting · \/proj\/alpha/);

  await page.click('[data-testid="session-row"][data-session-id="sess-alpha"] a');
  await waitForText('timeline-agent', /claude-code/);
  const items = await page.locator('[data-testid="timeline-item"]').evaluateAll((n) => n.map((e) => [e.dataset.actionId, e.dataset.verdict]));
  const want = (await ledgerRows('session=sess-alpha')).map((r) => [r.action_id, r.verdict]);
  assert.deepEqual(items, want, 'the timeline is the session, oldest first');
  await waitForText('timeline-list', /exit 0 · 1 sandbox denial/);
  await waitForText('timeline-list', /approved after/);
  assert.equal(page.url().split('#')[1], 'session=sess-alpha');
});

test('the overview numbers match the ledger', { timeout: TEST_TIMEOUT_MS }, async () => {
  await page.click('[data-testid="nav-overview"]');
  await waitForText('ov-total', /^\d+$/);
  const rows = await ledgerRows();
  const paused = rows.filter((r) => r.decided_by === 'human' || r.decided_by === 'timeout' || r.verdict === 'pending' ||
    (r.decision && r.decision.decided_by));
  const waits = rows.filter((r) => r.decision && r.decision.decided_by === 'human')
    .map((r) => r.decision.decided_at_ms - r.created_at_ms).sort((a, b) => a - b);
  const rank = (p) => waits[Math.max(1, Math.ceil((p * waits.length) / 100)) - 1];

  const api = (await call('/v1/ledger/overview', daemon.approverToken)).body;
  assert.equal(api.total, rows.length);
  assert.equal(api.pending_now, rows.filter((r) => r.verdict === 'pending').length);
  assert.equal(api.prompts.prompts, paused.length);
  assert.equal(api.prompts.granted, 0);
  assert.equal(api.latency.decisions, waits.length);
  assert.equal(api.latency.median_ms, rank(50));
  assert.equal(api.latency.p99_ms, rank(99));
  const sum = (k) => api.buckets.reduce((n, b) => n + b[k], 0);
  assert.equal(sum('allowed'), rows.filter((r) => r.verdict === 'allow' && r.decided_by !== 'human').length);
  assert.equal(sum('rejected'), rows.filter((r) => r.verdict === 'reject' && r.decided_by === 'rule').length);
  const human = (verdict) => rows.filter((r) => r.decision && r.decision.decided_by === 'human' && r.verdict === verdict).length;
  assert.equal(sum('approved'), human('allow'));
  assert.equal(sum('denied'), human('reject'));
  assert.equal(sum('pending'), rows.filter((r) => r.verdict === 'pending').length);
  assert.equal(sum('timed_out'), 0);
  const ruleCounts = new Map();
  for (const r of rows) ruleCounts.set(r.rule_id || '(policy default)', (ruleCounts.get(r.rule_id || '(policy default)') || 0) + 1);
  assert.deepEqual(api.top_rules.map((e) => [e.key, e.count]),
    [...ruleCounts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  assert.deepEqual(api.top_paused[0], { key: 'Bash: cargo publish --dry-run', count: 2, allowed: 1, rejected: 0, paused: 2 });
  assert.equal(api.classifier.scored + api.classifier.waiting, rows.length);

  // The page shows the same figures.
  await waitForText('ov-total', new RegExp(`^${rows.length}$`));
  const waiting = rows.filter((r) => r.verdict === 'pending').length;
  await waitForText('ov-pending', new RegExp(`^${waiting}$`));
  await waitForText('ov-prompts', new RegExp(`^${paused.length}$`));
  await waitForText('ov-granted', /^no grants$/);
  await waitForText('ov-decisions', /^2 decisions by a person$/);
  await waitForText('ov-policy-version', /./);
  const top = await page.locator('[data-testid="top-rule"]').evaluateAll((n) => n.map((e) => [e.dataset.key, Number(e.dataset.count)]));
  assert.deepEqual(top, api.top_rules.map((e) => [e.key, e.count]));
  const bars = await page.locator('[data-testid="ov-bucket"]').evaluateAll((n) => n.map((g) => Number(g.dataset.allowed)));
  assert.equal(bars.reduce((a, b) => a + b, 0), sum('allowed'));

  // A new pause reaches the overview on screen (live), without a reload.
  await check({ tool: 'Bash', input: { command: 'make deploy' }, session_id: 'sess-live', agent: 'codex', cwd: '/proj/alpha' });
  await waitForText('ov-pending', new RegExp(`^${waiting + 1}$`));
  await waitForText('ov-total', new RegExp(`^${rows.length + 1}$`));
  await page.screenshot({ path: join(ARTIFACT_DIR, 'overview-desktop.png'), fullPage: true });
});

test('every view works on a phone: no sideways overflow, screenshots saved', { timeout: TEST_TIMEOUT_MS }, async () => {
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light',
  });
  const p = await phone.newPage();
  const errors = [];
  p.on('pageerror', (err) => errors.push(err.message));
  const login = await call('/v1/login-codes', daemon.approverToken, {});
  await p.goto(login.body.url);
  await p.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: UI_TIMEOUT_MS });
  const keep = page;
  page = p;
  try {
    for (const [view, ready] of [
      ['inbox', '[data-testid="pending-row"]'],
      ['ledger', '[data-testid="ledger-row"]'],
      ['sessions', '[data-testid="session-row"]'],
      ['session=sess-alpha', '[data-testid="timeline-item"]'],
      ['overview', '[data-testid="top-rule"]'],
    ]) {
      await p.goto(`${daemon.baseUrl}/#${view}`);
      await p.waitForSelector(ready, { timeout: UI_TIMEOUT_MS });
      await noSidewaysOverflow(view);
      await p.screenshot({ path: join(ARTIFACT_DIR, `phone-${view.replace('=', '-')}.png`), fullPage: true });
    }
    // The timeline as a phone shows it, for the README.
    await p.goto(`${daemon.baseUrl}/#session=sess-alpha`);
    await p.waitForSelector('[data-testid="timeline-item"]', { timeout: UI_TIMEOUT_MS });
    await p.locator('[data-testid="timeline-list"]').evaluate((n) => window.scrollTo(0,
      n.getBoundingClientRect().top + window.scrollY - document.querySelector('.topbar').offsetHeight - 8));
    await p.screenshot({ path: join(ARTIFACT_DIR, 'phone-timeline.png') });
    // The history dialog fits too.
    await p.goto(`${daemon.baseUrl}/#ledger?session=sess-alpha`);
    await p.locator('[data-testid="ledger-row"] button').first().click();
    await p.waitForSelector('[data-testid="history-entry"]', { timeout: UI_TIMEOUT_MS });
    await noSidewaysOverflow('history dialog');
    await p.screenshot({ path: join(ARTIFACT_DIR, 'phone-history.png') });
  } finally {
    page = keep;
    await phone.close();
  }
  assert.deepEqual(errors, []);
});

test('desktop screenshots of the console views', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const [view, ready] of [['ledger', 'ledger-row'], ['sessions', 'session-row'], ['session=sess-alpha', 'timeline-item']]) {
    await page.goto(`${daemon.baseUrl}/#${view}`);
    await page.waitForSelector(`[data-testid="${ready}"]`, { timeout: UI_TIMEOUT_MS });
    await page.screenshot({ path: join(ARTIFACT_DIR, `${view.replace('=', '-')}-desktop.png`), fullPage: true });
  }
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(dialogs, []);
});
