// HTTP to the daemon: JSON in and out, the CSRF header on every state change, errors as ApiError.

import { signOut } from './page.js';
import { state } from './state.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'manual' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['X-Gatehouse-Csrf'] = state.csrf || '';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the Gatehouse daemon.');
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.status === 401) {
    signOut();
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const code = err.code || (res.type === 'opaqueredirect' ? 'redirected' : `http_${res.status}`);
    throw new ApiError(res.status, code, err.message || res.statusText || 'Request failed');
  }
  return data;
}

export async function loadSession() {
  const info = await api('/v1/session');
  state.csrf = info && info.csrf_token;
}
