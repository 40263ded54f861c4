// Page-wide state: the connection indicator, sign-out, load errors, the health banner (`/healthz`),
// screen-reader announcements and toasts.

import { h } from './dom.js';
import { closeModal } from './modal.js';
import { render } from './pending.js';
import { TOAST_MS, state, el } from './state.js';

export function setConnection(kind) {
  const labels = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    'signed-out': 'Signed out',
  };
  el.conn.dataset.state = kind;
  el.connText.textContent = labels[kind] || kind;
}

export function signOut() {
  if (state.signedOut) return;
  state.signedOut = true;
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close();
  }
  closeModal();
  state.pending.clear();
  state.recent = [];
  setConnection('signed-out');
  el.banner.className = 'banner';
  el.banner.dataset.kind = 'signed-out';
  el.banner.replaceChildren(
    h('strong', {}, 'Not signed in: '),
    'open the login link printed by ', h('code', {}, 'gatehouse serve'),
    ', or run ', h('code', {}, 'gatehouse dashboard'), '.');
  el.banner.hidden = false;
  el.content.hidden = true;
  render();
}

export function reportLoadError(e) {
  if (state.signedOut || (e && e.status === 401)) return;
  console.error('gatehouse: could not load actions', e);
  el.banner.className = 'banner';
  el.banner.dataset.kind = 'load-error';
  el.banner.textContent = `Could not load actions: ${e && e.message ? e.message : e}`;
  el.banner.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Health: a policy that failed to reload keeps the last good one in force, and the person
// deciding should know which rules they are looking at.

export async function loadHealth() {
  let health;
  try {
    const res = await fetch('/healthz', { credentials: 'same-origin', cache: 'no-store' });
    health = await res.json();
  } catch (e) {
    return; // the connection indicator already says the daemon is unreachable
  }
  showHealth(health);
}

export function showHealth(health) {
  const problems = [];
  if (health && health.policy_error) {
    problems.push(['The policy file on disk was refused; the last good policy still decides.',
      health.policy_error]);
  }
  if (health && health.status === 'degraded' && health.reason) {
    problems.push(['Gatehouse is degraded.', health.reason]);
  }
  if (problems.length === 0) {
    el.healthBanner.hidden = true;
    el.healthBanner.replaceChildren();
    return;
  }
  el.healthBanner.replaceChildren(...problems.map(([title, detail]) => h('div', {},
    h('strong', {}, title),
    h('span', { class: 'banner-detail mono', 'data-testid': 'health-detail' }, detail))));
  el.healthBanner.hidden = false;
}

export function announce(text) {
  // Clear first so the same message twice is still read out.
  el.announcer.textContent = '';
  setTimeout(() => { el.announcer.textContent = text; }, 50);
}

export function toast(text, kind) {
  const node = h('div', { class: `toast toast-${kind || 'ok'}`, 'data-testid': 'toast' }, text);
  el.toasts.append(node);
  setTimeout(() => node.remove(), TOAST_MS);
}
