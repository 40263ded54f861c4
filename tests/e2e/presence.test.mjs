// Browser tests of person presence (`approvals.presence = "webauthn"`, the default) against the
// real daemon, with Chromium's virtual authenticator (CDP `WebAuthn.addVirtualAuthenticator`,
// user verification on): enrolment with the code the daemon shows on its terminal only, an
// approval confirmed with the authenticator releases the waiting check, and an assertion made
// for another action, replayed, or without user verification decides nothing. The approver token
// alone gets `403 presence_required`.
//
// The daemon runs under script(1) so it has a controlling terminal: that is where it shows the
// enrolment code (never stdout, a log or a file).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  assertServesCurrentAssets, launchChromium, startDaemon, stopDaemon, withTimeout,
} from './support/daemon.mjs';

const UI_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 60_000;

const POLICY = `default = "pause"

[[rules]]
id = "pause-bash"
effect = "pause"
tool = "Bash"
reason = "shell commands need a person's approval"
`;

let daemon;
let browser;
let context;
let page;
let cdp;
let authenticatorId;
const pageErrors = [];

const byTestId = (id) => page.locator(`[data-testid="${id}"]`);

function call(path, token, body) {
  const init = { headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return withTimeout(fetch(`${daemon.baseUrl}${path}`, init)
    .then(async (res) => ({ status: res.status, body: await res.json() })), 40_000, `${path}`);
}

function pause(toolUseId, command, waitMs = 30_000) {
  return call('/v1/check', daemon.agentToken, {
    tool: 'Bash', input: { command }, session_id: 'presence-e2e', tool_use_id: toolUseId, wait_ms: waitMs,
  });
}

async function pendingId(toolUseId) {
  for (let i = 0; i < 100; i += 1) {
    const { body } = await call('/v1/actions?status=pending&limit=100', daemon.approverToken);
    const found = body.actions.find((a) => a.tool_use_id === toolUseId);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${toolUseId} never paused`);
}

async function openRow(command) {
  const row = page.locator('[data-testid="pending-row"]', { hasText: command });
  await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await row.locator('button').click();
  await byTestId('modal').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
}

/** In the page: a challenge for (`id`, `hash`, `decision`) signed by the authenticator. */
function assertFromPage(id, hash, decision, userVerification = 'required') {
  return page.evaluate(async ({ id, hash, decision, userVerification }) => {
    const csrf = (await (await fetch('/v1/session')).json()).csrf_token;
    const res = await fetch(`/v1/actions/${id}/presence`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Gatehouse-Csrf': csrf },
      body: JSON.stringify({ decision, action_hash: hash }),
    });
    const options = await res.json();
    const bytes = (t) => Uint8Array.from(atob(t.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (t.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const credential = await navigator.credentials.get({ publicKey: {
      challenge: bytes(options.challenge), rpId: options.rp_id, userVerification,
      allowCredentials: options.allow_credentials.map((c) => ({ type: 'public-key', id: bytes(c) })),
    } });
    return {
      credential_id: b64(credential.rawId),
      client_data_json: b64(credential.response.clientDataJSON),
      authenticator_data: b64(credential.response.authenticatorData),
      signature: b64(credential.response.signature),
    };
  }, { id, hash, decision, userVerification });
}

/** In the page: `POST /v1/actions/{id}/decision` with the session's CSRF token. */
function decideFromPage(id, body) {
  return page.evaluate(async ({ id, body }) => {
    const csrf = (await (await fetch('/v1/session')).json()).csrf_token;
    const res = await fetch(`/v1/actions/${id}/decision`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Gatehouse-Csrf': csrf },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }, { id, body });
}

before(async () => {
  daemon = await startDaemon({
    policy: POLICY, config: '[classifier]\nkind = "none"\n', presence: 'webauthn', terminal: true,
  });
  await assertServesCurrentAssets(daemon.baseUrl);
  assert.match(daemon.enrolmentCode || '', /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/,
    `the enrolment code is shown on the terminal:\n${daemon.output.join('\n')}`);
  assert.ok(daemon.loginUrl.startsWith('http://localhost:'), daemon.loginUrl);
  browser = await launchChromium();
  context = await browser.newContext();
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  }));
  await page.goto(daemon.loginUrl, { timeout: UI_TIMEOUT_MS });
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]',
    { timeout: UI_TIMEOUT_MS });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  await browser?.close().catch(() => {});
  await stopDaemon(daemon);
}, { timeout: TEST_TIMEOUT_MS });

test('the code shown on the terminal is in no output an agent could read', () => {
  const stdout = daemon.output.filter((l) => l.startsWith('[stdout]') && !/presence enrolment code:|dashboard login: http/.test(l));
  // Under script(1) stdout *is* the terminal; what a pipe would get is the rest.
  assert.ok(!stdout.some((l) => l.includes(daemon.enrolmentCode)));
  assert.ok(!daemon.output.filter((l) => l.startsWith('[stderr]')).some((l) => l.includes(daemon.enrolmentCode)),
    'not in the log');
});

test('the approver token alone cannot decide', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiting = pause('p0', 'git push origin token-only');
  const action = await pendingId('p0');
  const reply = await call(`/v1/actions/${action.action_id}/decision`, daemon.approverToken,
    { decision: 'approve', action_hash: action.action_hash });
  assert.equal(reply.status, 403, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, 'presence_required');
  // Clean up with the person's presence later; for now it stays pending.
  const again = await call(`/v1/actions/${action.action_id}`, daemon.approverToken);
  assert.equal(again.body.verdict, 'pending');
  waiting.catch(() => {});
});

test('a person enrols with the terminal code, then approves with their authenticator', { timeout: TEST_TIMEOUT_MS }, async () => {
  const enrol = byTestId('presence-enrol');
  await enrol.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  // A wrong code is refused.
  await byTestId('enrol-code').fill('AAAA-BBBB-CCCC-DDDD');
  await byTestId('enrol').click();
  await page.locator('[data-testid="presence-error"]', { hasText: 'not the one shown' })
    .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await byTestId('enrol-code').fill(daemon.enrolmentCode.toLowerCase());
  await byTestId('enrol').click();
  await page.locator('[data-testid="presence-status"]', { hasText: '1 authenticator enrolled' })
    .waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'the virtual authenticator holds the private key');

  const waiting = pause('p1', 'git push origin main');
  await openRow('git push origin main');
  await byTestId('approve').click();
  const { status, body } = await waiting;
  assert.equal(status, 200);
  assert.equal(body.verdict, 'allow', JSON.stringify(body));
  assert.equal(body.decided_by, 'human');
  await byTestId('modal').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  const decided = await call(`/v1/actions/${body.action_id}`, daemon.approverToken);
  assert.equal(decided.body.decision.decided_by, 'human');
});

test('an assertion for another action, replayed, or without user verification decides nothing', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waitA = pause('p2', 'git push origin a');
  const waitB = pause('p3', 'git push origin b');
  const a = await pendingId('p2');
  const b = await pendingId('p3');

  // Made for A, sent for B.
  const forA = await assertFromPage(a.action_id, a.action_hash, 'approve');
  let reply = await decideFromPage(b.action_id, { decision: 'approve', action_hash: b.action_hash, presence: forA });
  assert.equal(reply.status, 403, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, 'presence_invalid');

  // Used once for A (a deny), then replayed on B.
  const denyA = await assertFromPage(a.action_id, a.action_hash, 'deny');
  reply = await decideFromPage(a.action_id, { decision: 'deny', action_hash: a.action_hash, presence: denyA });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal((await waitA).body.verdict, 'reject');
  reply = await decideFromPage(b.action_id, { decision: 'deny', action_hash: b.action_hash, presence: denyA });
  assert.equal(reply.status, 403, JSON.stringify(reply.body));

  // The authenticator without user verification (presence only): refused by the daemon.
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  const unverified = await assertFromPage(b.action_id, b.action_hash, 'approve', 'discouraged');
  reply = await decideFromPage(b.action_id, { decision: 'approve', action_hash: b.action_hash, presence: unverified });
  assert.equal(reply.status, 403, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, 'presence_invalid');
  assert.match(reply.body.error.message, /UV flag/);
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });

  const still = await call(`/v1/actions/${b.action_id}`, daemon.approverToken);
  assert.equal(still.body.verdict, 'pending');
  // The person decides B properly.
  await openRow('git push origin b');
  await byTestId('deny').click();
  assert.equal((await waitB).body.verdict, 'reject');
  assert.deepEqual(pageErrors, []);
});
