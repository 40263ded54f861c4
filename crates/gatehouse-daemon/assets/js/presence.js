// Person presence (WebAuthn): enrolling authenticators and confirming each decision with one.

import { ApiError, api } from './api.js';
import { h } from './dom.js';
import { toast } from './page.js';
import { state, el } from './state.js';

export function b64urlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function bytesToB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let raw = '';
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function presenceOriginProblem() {
  if (!state.presence) return null;
  if (location.origin !== state.presence.origin) {
    return `Open the dashboard at ${state.presence.origin} to confirm with your authenticator ` +
      '(run `gatehouse dashboard` for a login link there).';
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return 'This browser cannot use an authenticator (WebAuthn) here.';
  }
  return null;
}

/** Asks the daemon for a challenge at `path` and the authenticator to sign it, with user
 *  verification; returns the assertion for the daemon to verify. */
export async function confirmPresence(path, challengeBody) {
  const problem = presenceOriginProblem();
  if (problem) throw new ApiError(0, 'presence', problem);
  const options = await api(path, { method: 'POST', body: challengeBody });
  let credential;
  try {
    credential = await navigator.credentials.get({
      publicKey: {
        challenge: b64urlToBytes(options.challenge),
        rpId: options.rp_id,
        allowCredentials: options.allow_credentials.map((id) => ({ type: 'public-key', id: b64urlToBytes(id) })),
        userVerification: 'required',
        timeout: options.timeout_ms,
      },
    });
  } catch (e) {
    throw new ApiError(0, 'presence', `your authenticator did not confirm (${e && e.name ? e.name : e}).`);
  }
  if (!credential) throw new ApiError(0, 'presence', 'your authenticator did not confirm.');
  return {
    credential_id: bytesToB64url(credential.rawId),
    client_data_json: bytesToB64url(credential.response.clientDataJSON),
    authenticator_data: bytesToB64url(credential.response.authenticatorData),
    signature: bytesToB64url(credential.response.signature),
  };
}

export async function loadPresence() {
  try {
    state.presence = await api('/v1/presence');
  } catch (e) {
    if (e.status === 401) return;
    state.presence = null;
  }
  renderPresence();
}

export function renderPresence() {
  const p = state.presence;
  el.presencePanel.hidden = !p || state.signedOut;
  el.presenceBanner.hidden = true;
  if (!p) return;
  if (p.mode === 'off') {
    el.presenceBanner.replaceChildren(
      h('strong', {}, 'Person presence is off: '),
      'the approver token alone can approve. Anything that can read it, an agent included, can approve its own actions. ',
      h('code', {}, 'approvals.presence = "off"'), ' is for tests and automation.');
    el.presenceBanner.hidden = false;
    el.presencePanel.hidden = true;
    return;
  }
  el.presenceStatus.textContent = p.enrolled === 0
    ? 'No authenticator enrolled: nothing can be decided until one is.'
    : `${p.enrolled} authenticator${p.enrolled === 1 ? '' : 's'} enrolled. Each decision asks for it.`;
  el.presenceEnrol.hidden = p.enrolled > 0;
  el.presenceAdd.hidden = p.enrolled === 0;
  const problem = presenceOriginProblem();
  if (problem) {
    el.presenceBanner.replaceChildren(h('strong', {}, 'Decisions need your authenticator: '), problem);
    el.presenceBanner.hidden = false;
  }
}

export function showPresenceError(text) {
  el.presenceError.hidden = !text;
  el.presenceError.textContent = text || '';
}

/** Registers a new credential with options from `POST /v1/presence/enrol`. */
export async function createCredential(options) {
  let credential;
  try {
    credential = await navigator.credentials.create({
      publicKey: {
        challenge: b64urlToBytes(options.challenge),
        rp: { id: options.rp_id, name: options.rp_name },
        user: { id: b64urlToBytes(options.user_id), name: options.user_name, displayName: 'Gatehouse approver' },
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
        authenticatorSelection: { userVerification: 'required', residentKey: 'discouraged' },
        excludeCredentials: options.exclude_credentials.map((id) => ({ type: 'public-key', id: b64urlToBytes(id) })),
        attestation: 'none',
        timeout: options.timeout_ms,
      },
    });
  } catch (e) {
    throw new ApiError(0, 'presence', `the authenticator did not enrol (${e && e.name ? e.name : e}).`);
  }
  return api('/v1/presence/enrol/finish', {
    method: 'POST',
    body: {
      client_data_json: bytesToB64url(credential.response.clientDataJSON),
      attestation_object: bytesToB64url(credential.response.attestationObject),
      name: navigator.platform || 'authenticator',
    },
  });
}

export async function enrolWithCode(ev) {
  ev.preventDefault();
  showPresenceError(null);
  try {
    const problem = presenceOriginProblem();
    if (problem) throw new ApiError(0, 'presence', problem);
    const options = await api('/v1/presence/enrol', { method: 'POST', body: { code: el.enrolCode.value } });
    await createCredential(options);
    el.enrolCode.value = '';
    toast('Authenticator enrolled. Each decision now asks for it.', 'ok');
  } catch (e) {
    showPresenceError(`Not enrolled: ${e.message}`);
  }
  loadPresence();
}

export async function addAuthenticator() {
  showPresenceError(null);
  try {
    const presence = await confirmPresence('/v1/presence/credentials/challenge', {});
    const options = await api('/v1/presence/enrol', { method: 'POST', body: { presence } });
    await createCredential(options);
    toast('Another authenticator enrolled.', 'ok');
  } catch (e) {
    showPresenceError(`Not enrolled: ${e.message}`);
  }
  loadPresence();
}
