// The console's views and their navigation: Inbox (the approvals), Ledger, Sessions, Overview.
// The address's fragment names the view (`#ledger?tool=Bash`, `#session=ID`, `#overview`), so
// the back button, a reload and a shared link land on the same view. `#action=ID` (the link
// `gatehouse approve` prints) belongs to the inbox.

import { el } from './state.js';

/** The views, by name: `{ show(params), hide() }` registered by their modules. */
const views = new Map();
let current = null;

/** Registers a view; `show` gets the fragment's parameters (URLSearchParams). */
export function registerView(name, view) {
  views.set(name, view);
}

/** The view and its parameters an address fragment names. */
export function parseRoute(hash) {
  const raw = (hash || '').replace(/^#/, '');
  if (raw.startsWith('session=')) {
    return { name: 'session', params: new URLSearchParams({ id: decodeURIComponent(raw.slice(8)) }) };
  }
  const [name, query] = raw.split('?');
  if (views.has(name) && name !== 'session') return { name, params: new URLSearchParams(query || '') };
  return { name: 'inbox', params: new URLSearchParams() };
}

/** The fragment for a view and its parameters (empty ones left out). */
export function routeHash(name, params) {
  if (name === 'session') return `#session=${encodeURIComponent(params.get('id') || '')}`;
  const kept = new URLSearchParams();
  for (const [k, v] of params || []) if (v !== '') kept.set(k, v);
  const query = kept.toString();
  return `#${name}${query ? `?${query}` : ''}`;
}

/** Goes to a view: a new history entry, unless `replace`. */
export function navigate(name, params, { replace = false } = {}) {
  const hash = routeHash(name, params || new URLSearchParams());
  if (replace) history.replaceState(null, '', hash);
  else if (location.hash !== hash) history.pushState(null, '', hash);
  route();
}

/** Shows the view the address names. */
export function route() {
  if (/^#action=/.test(location.hash)) return; // the inbox opens it (pending.js)
  const { name, params } = parseRoute(location.hash);
  const tab = name === 'session' ? 'sessions' : name;
  el.content.dataset.view = name;
  for (const node of el.content.querySelectorAll('[data-view]')) {
    node.classList.toggle('view-active', node.dataset.view === name);
  }
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === tab) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (current && current !== name) views.get(current)?.hide?.();
  current = name;
  views.get(name)?.show?.(params);
}

/** The view on screen. */
export function currentView() {
  return current;
}

export function startConsole() {
  registerView('inbox', {});
  window.addEventListener('popstate', route);
  window.addEventListener('hashchange', route);
  route();
}
