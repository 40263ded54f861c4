// The confirmation page a remote approve/deny link opens (/confirm/{secret}): one button, armed
// after a moment; with person presence on, the authenticator signs a challenge bound to the
// link's action, its hash and the decision before anything is decided. The link alone never
// decides (docs/APPROVALS.md, "Remote approvals").

const ARM_DELAY_MS = 600;

function b64urlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function bytesToB64url(buffer) {
  let raw = '';
  for (const b of new Uint8Array(buffer)) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new Error(err.message || `HTTP ${res.status}`);
  }
  return data;
}

async function assertion(base) {
  const options = await post(`${base}/presence`, {});
  const credential = await navigator.credentials.get({
    publicKey: {
      challenge: b64urlToBytes(options.challenge),
      rpId: options.rp_id,
      allowCredentials: options.allow_credentials.map((id) => ({ type: 'public-key', id: b64urlToBytes(id) })),
      userVerification: 'required',
      timeout: options.timeout_ms,
    },
  });
  if (!credential) throw new Error('your authenticator did not confirm.');
  return {
    credential_id: bytesToB64url(credential.rawId),
    client_data_json: bytesToB64url(credential.response.clientDataJSON),
    authenticator_data: bytesToB64url(credential.response.authenticatorData),
    signature: bytesToB64url(credential.response.signature),
  };
}

function start() {
  const button = document.getElementById('confirm');
  if (!button) return;
  const error = document.querySelector('[data-testid="confirm-error"]');
  const result = document.querySelector('[data-testid="confirm-result"]');
  const base = location.pathname.replace(/\/+$/, '');
  setTimeout(() => { button.disabled = false; }, ARM_DELAY_MS);
  button.addEventListener('click', async () => {
    button.disabled = true;
    error.hidden = true;
    try {
      const body = {};
      if (button.dataset.presence === 'webauthn') body.presence = await assertion(base);
      const action = await post(base, body);
      result.textContent = `${action.verdict === 'allow' ? 'Approved' : 'Denied'}: ${action.tool} (${action.action_id}). You can close this page.`;
      result.dataset.verdict = action.verdict;
    } catch (e) {
      error.textContent = `Nothing was decided: ${e && e.message ? e.message : e}`;
      error.hidden = false;
      button.disabled = false;
    }
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
