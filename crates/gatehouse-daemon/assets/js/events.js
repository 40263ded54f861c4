// Live events: the WebSocket `/v1/events`, reconnecting with backoff. Feature modules subscribe with
// `onEvent` (every pushed event) and `onConnected` (reload after every (re)connect, since events
// may have been missed while away).

import { api, loadSession } from './api.js';
import { setConnection, reportLoadError } from './page.js';
import { BACKOFF_MIN_MS, BACKOFF_MAX_MS, state } from './state.js';

/** Called with every event the daemon pushes (parsed JSON), in registration order. */
const eventHandlers = [];
/** Called (and awaited together) on every (re)connect: events may have been missed meanwhile. */
const connectedHandlers = [];

/** Runs `fn(msg)` for every live event. */
export function onEvent(fn) {
  eventHandlers.push(fn);
}

/** Runs `fn()` (which may return a promise) after every (re)connect, to reload what it shows. */
export function onConnected(fn) {
  connectedHandlers.push(fn);
}

export function connect() {
  if (state.signedOut) return;
  clearTimeout(state.reconnectTimer);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(`${scheme}//${location.host}/v1/events`);
  } catch {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  ws.addEventListener('open', () => {
    if (state.ws !== ws) return;
    state.wsAttempt = 0;
    setConnection('connected');
    (state.csrf ? Promise.resolve() : loadSession())
      .then(() => Promise.all(connectedHandlers.map((fn) => fn())))
      .catch(reportLoadError);
  });
  ws.addEventListener('message', (ev) => {
    if (state.ws !== ws) return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    for (const fn of eventHandlers) {
      try { fn(msg); } catch (e) { console.error('gatehouse: an event handler failed', e); }
    }
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (state.signedOut) return;
    setConnection('reconnecting');
    // A refused upgrade looks like any other drop; ask whether the session is still valid.
    api('/v1/session').then((info) => {
      if (info && info.csrf_token) state.csrf = info.csrf_token;
    }).catch(() => {}).finally(scheduleReconnect);
  });
}

export function scheduleReconnect() {
  if (state.signedOut) return;
  clearTimeout(state.reconnectTimer);
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.wsAttempt);
  state.wsAttempt += 1;
  const delay = base / 2 + Math.random() * (base / 2);
  state.reconnectTimer = setTimeout(connect, delay);
}
