// Gatehouse dashboard: lists paused agent tool calls live and lets a person approve or deny them.
//
// Data flow: `GET /v1/session` (CSRF token) → `GET /v1/actions` (pending + recent) → WebSocket
// `/v1/events` for live changes, reconnecting with backoff and reloading the pending list on every
// (re)connect since events may have been missed. Decisions go to `POST /v1/actions/{id}/decision`.
// `GET /healthz` is polled so a policy file that failed to reload, or a degraded daemon, is shown.
// The review view reads `GET /v1/review` (reloaded when a label, a disagreement or a human
// decision is pushed) and labels with `POST /v1/actions/{id}/label`.
//
// Invariant: text that came from the daemon (tool inputs, reasons, notes...) only ever reaches the
// page through `textContent` or attribute values, never as HTML: an agent controls those strings.
// Invisible and direction-changing characters in it (bidi overrides, zero-width, controls) are
// shown escaped and highlighted (`\u{202E}`), so a command cannot read as another.
//
// No reflex approvals: nothing opens or focuses Approve by itself, no key approves, and after a
// decision the dialog closes instead of moving on to the next action. With person presence on
// (the default), every decision is confirmed with the person's authenticator (WebAuthn, user
// verification required) over a challenge bound to the action, its hash and the decision.
'use strict';

(() => {
  const RECENT_LIMIT = 50;
  const PENDING_LIMIT = 200;
  const SOON_MS = 10_000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15_000;
  const TOAST_MS = 6_000;
  const REVIEW_LIMIT = 100;
  const REVIEW_RELOAD_MS = 150;
  const HEALTH_POLL_MS = 3_000;
  /** How long the decision buttons stay disabled after an action is shown. */
  const ARM_DELAY_MS = 600;

  const state = {
    csrf: null,
    signedOut: false,
    /** @type {Map<string, object>} pending ActionViews by action_id */
    pending: new Map(),
    /** @type {object[]} decided ActionViews, newest first */
    recent: [],
    /** ids known to be decided: guards against a stale list racing a live event */
    decided: new Set(),
    /** ids the person dismissed with Esc / Later: not opened automatically again */
    dismissed: new Set(),
    /** ids this page just decided, so their `action.decided` echo is not reported as "elsewhere" */
    decidedHere: new Set(),
    current: null,
    /** the action_hash of the action the modal shows: a decision names exactly that action */
    currentHash: null,
    busy: false,
    moreThanShown: false,
    ws: null,
    wsAttempt: 0,
    reconnectTimer: null,
    loadSeq: 0,
    /** event counter, and the count at which each pending action was last pushed to us */
    eventSeq: 0,
    seenAt: new Map(),
    /** the review queue as last read: which filter, its items, the whole queue's counts */
    review: { filter: 'unlabelled', items: [], unlabelled: 0, labelled: 0, more: false },
    /** model and thresholds (`ClassifierInfo`), from the review queue */
    classifier: null,
    reviewTimer: null,
    reviewSeq: 0,
    /** ids with a label request in flight */
    labelling: new Set(),
    /** whether the decision buttons may be pressed yet (see armButtons) */
    armed: false,
    armTimer: null,
    /** `GET /v1/presence`: how decisions are confirmed, enrolled authenticators */
    presence: null,
  };

  const $ = (id) => document.getElementById(id);
  const el = {};

  // ---------------------------------------------------------------------------------------------
  // DOM building: strings always become text nodes.

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      if (child instanceof Node) node.append(child);
      else node.append(...visible(String(child)));
    }
    return node;
  }

  function setText(node, text) {
    if (text === null || text === undefined || text === '') node.textContent = '—';
    else setVisible(node, String(text));
  }

  // Characters that are invisible or change how text around them reads: C0/C1 controls (not
  // newline or tab), DEL, soft hyphen, bidi marks, embeddings, overrides and isolates, zero-width
  // and word-joiner characters, line/paragraph separators, variation selectors, BOM, fillers,
  // interlinear annotation marks, and tag characters.
  const HIDDEN_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2028-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB]|\uDB40[\uDC00-\uDCFF]/g;

  function codePointName(ch) {
    const cp = ch.codePointAt(0);
    return `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}`;
  }

  /** Whether `text` holds a character `visible` escapes. */
  function hasHidden(text) {
    HIDDEN_CHARS.lastIndex = 0;
    const found = typeof text === 'string' && HIDDEN_CHARS.test(text);
    HIDDEN_CHARS.lastIndex = 0;
    return found;
  }

  /** `text` as nodes: plain runs as text, each hidden character as a highlighted escape. */
  function visible(text) {
    const nodes = [];
    let last = 0;
    HIDDEN_CHARS.lastIndex = 0;
    for (const match of text.matchAll(HIDDEN_CHARS)) {
      if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
      const esc = document.createElement('span');
      esc.className = 'esc';
      esc.dataset.testid = 'escaped-char';
      esc.title = 'invisible or direction-changing character';
      esc.textContent = codePointName(match[0]);
      nodes.push(esc);
      last = match.index + match[0].length;
    }
    if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
    return nodes;
  }

  function setVisible(node, text) {
    node.replaceChildren(...visible(String(text)));
  }

  // ---------------------------------------------------------------------------------------------
  // Formatting.

  const SUMMARY_KEYS = {
    Bash: ['command'],
    Read: ['file_path'],
    Write: ['file_path'],
    Edit: ['file_path'],
    MultiEdit: ['file_path'],
    NotebookEdit: ['notebook_path'],
    Glob: ['pattern', 'path'],
    Grep: ['pattern', 'path'],
    WebFetch: ['url'],
    WebSearch: ['query'],
    Task: ['description'],
  };

  /** One line saying what the action does: for Bash the command, for file tools the path. */
  function summarize(action) {
    const input = action && action.input;
    if (input === null || input === undefined) return '';
    if (typeof input !== 'object') return oneLine(String(input));
    const keys = SUMMARY_KEYS[action.tool] || [];
    const parts = keys.map((k) => input[k]).filter((v) => typeof v === 'string' && v !== '');
    if (parts.length) return oneLine(parts.join('  '));
    for (const key of ['command', 'cmd', 'file_path', 'path', 'url', 'query']) {
      if (typeof input[key] === 'string' && input[key] !== '') return oneLine(input[key]);
    }
    let json;
    try { json = JSON.stringify(input); } catch { json = ''; }
    return oneLine(json === '{}' ? '(no input)' : json);
  }

  function oneLine(text) {
    const flat = text.replace(/\s*[\r\n]+\s*/g, ' ⏎ ').trim();
    return flat.length > 300 ? flat.slice(0, 299) + '…' : flat;
  }

  function prettyJson(value) {
    try { return JSON.stringify(value, null, 2) ?? 'null'; } catch { return String(value); }
  }

  function formatDuration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
    const hr = Math.floor(m / 60);
    if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, '0')}m`;
    return `${Math.floor(hr / 24)}d`;
  }

  function formatAge(sinceMs) {
    const ms = Date.now() - sinceMs;
    if (ms < 5_000) return 'just now';
    return `${formatDuration(ms)} ago`;
  }

  function formatClock(ms) {
    if (typeof ms !== 'number') return '';
    const d = new Date(ms);
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
  }

  /** Text and class of a deadline countdown. */
  function deadlineView(deadlineMs) {
    if (typeof deadlineMs !== 'number') return { text: 'no deadline', cls: 'countdown none' };
    const left = deadlineMs - Date.now();
    if (left <= 0) return { text: 'expired', cls: 'countdown expired' };
    const secs = Math.ceil(left / 1000);
    const text = secs < 60 ? `${secs}s left` : `${formatDuration(left)} left`;
    return { text, cls: left <= SOON_MS ? 'countdown soon' : 'countdown' };
  }

  function paintDeadline(node) {
    const raw = node.dataset.deadline;
    const view = deadlineView(raw === undefined || raw === '' ? null : Number(raw));
    node.textContent = view.text;
    node.className = view.cls;
  }

  function who(action) {
    const parts = [];
    parts.push(action.agent ? action.agent : 'unknown agent');
    if (action.session_id) parts.push(`session ${action.session_id}`);
    if (action.cwd) parts.push(action.cwd);
    return parts.join(' · ');
  }

  /** Why an action carries no score, in words a person can act on. */
  function tier2Words(action) {
    switch (action.tier2_status) {
      case 'pending': return 'scoring…';
      case 'timeout': return 'classifier timed out';
      case 'dropped': return 'not scored: scoring queue full';
      case 'disabled': return 'no classifier configured';
      case 'error': return action.tier2_error ? `classifier error: ${action.tier2_error}` : 'classifier error';
      default: return 'not scored';
    }
  }

  function scoreClass(score) {
    if (score >= 0.7) return 'badge badge-high';
    if (score >= 0.4) return 'badge badge-mid';
    return 'badge badge-low';
  }

  /** Tier 2 is advisory: its score is shown neutrally (never a reassuring green "benign"); a
   *  high score is flagged, a low one says nothing about safety. */
  function tier2Badge(action) {
    const t = action.tier2;
    if (t && typeof t.score === 'number') {
      return h('span', {
        class: t.score >= 0.7 ? 'badge badge-high' : 'badge badge-advisory',
        title: `classifier score ${t.score.toFixed(2)} by ${t.model}: advisory, it never allows anything`,
        'data-testid': 'tier2-badge',
      }, `classifier: ${t.score.toFixed(2)} (advisory)`);
    }
    return h('span', { class: 'badge badge-none', 'data-testid': 'tier2-badge' }, tier2Words(action));
  }

  function verdictBadge(action) {
    const by = action.decision ? action.decision.decided_by : action.decided_by;
    const verdict = action.decision ? action.decision.verdict : action.verdict;
    let text;
    let cls;
    if (by === 'timeout') { text = 'Timed out'; cls = 'badge badge-timeout'; }
    else if (by === 'human') { text = verdict === 'allow' ? 'Approved' : 'Denied'; }
    else if (by === 'error') { text = 'Error: rejected'; cls = 'badge badge-reject'; }
    else if (by === 'rule') { text = verdict === 'allow' ? 'Allowed by rule' : 'Rejected by rule'; }
    else if (by === 'default') { text = verdict === 'allow' ? 'Allowed by default' : 'Rejected by default'; }
    else { text = verdict || 'unknown'; }
    if (!cls) cls = verdict === 'allow' ? 'badge badge-allow' : 'badge badge-reject';
    // Observe mode: allowed, but the rules would have rejected or paused it.
    if (action.observed && verdict === 'allow' && (by === 'rule' || by === 'default')) {
      text = `${text} (observe: would ${action.observed})`;
      cls = 'badge badge-timeout';
    }
    return h('span', { class: cls, 'data-testid': 'verdict-badge' }, text);
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP.

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { method = 'GET', body } = {}) {
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

  async function loadSession() {
    const info = await api('/v1/session');
    state.csrf = info && info.csrf_token;
  }

  async function loadActions() {
    const seq = ++state.loadSeq;
    const eventMark = state.eventSeq;
    const [pendingList, recentList] = await Promise.all([
      api(`/v1/actions?status=pending&limit=${PENDING_LIMIT}`),
      api(`/v1/actions?status=decided&limit=${RECENT_LIMIT}`).catch((e) => {
        if (e.status === 401) throw e;
        return api(`/v1/actions?limit=${RECENT_LIMIT}`).catch(() => ({ actions: [] }));
      }),
    ]);
    if (seq !== state.loadSeq || state.signedOut) return; // a newer load is in flight
    const fresh = new Map();
    for (const a of (pendingList && pendingList.actions) || []) {
      if (a.verdict === 'pending' && !state.decided.has(a.action_id)) fresh.set(a.action_id, a);
    }
    state.moreThanShown = Boolean(pendingList && pendingList.next_before);
    for (const [id, a] of state.pending) {
      if (fresh.has(id)) continue;
      if ((state.seenAt.get(id) || 0) > eventMark || state.moreThanShown) {
        // Arrived while the list was in flight, or beyond the page we read: keep it.
        fresh.set(id, a);
      } else {
        // We thought it pending and the (complete) list says otherwise: decided while we were away.
        state.decided.add(id);
      }
    }
    state.pending = fresh;
    if (el.banner.dataset.kind === 'load-error') el.banner.hidden = true;
    mergeRecent(((recentList && recentList.actions) || []).filter((a) => a.verdict !== 'pending'));
    render();
    reconcileModal();
    openFromAddress();
  }

  /** `#action=ID` (the link `gatehouse approve` prints) opens that action once: the person
   *  followed it on purpose; nothing else opens the dialog by itself. */
  function openFromAddress() {
    const match = /^#action=([A-Za-z0-9_]+)$/.exec(location.hash);
    if (!match || state.current || !state.pending.has(match[1])) return;
    history.replaceState(null, '', location.pathname);
    openModal(match[1]);
  }

  function mergeRecent(actions) {
    const byId = new Map(state.recent.map((a) => [a.action_id, a]));
    for (const a of actions) {
      byId.set(a.action_id, a);
      state.decided.add(a.action_id);
    }
    state.recent = [...byId.values()]
      .sort((x, y) => decidedAt(y) - decidedAt(x))
      .slice(0, RECENT_LIMIT);
  }

  function decidedAt(a) {
    return (a.decision && a.decision.decided_at_ms) || a.created_at_ms || 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Live events.

  function connect() {
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
        .then(() => Promise.all([loadActions(), loadReview()]))
        .catch(reportLoadError);
    });
    ws.addEventListener('message', (ev) => {
      if (state.ws !== ws) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      handleEvent(msg);
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

  function scheduleReconnect() {
    if (state.signedOut) return;
    clearTimeout(state.reconnectTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.wsAttempt);
    state.wsAttempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function handleEvent(msg) {
    if (reviewMayChange(msg)) scheduleReviewLoad();
    switch (msg && msg.type) {
      case 'action.pending': {
        const a = msg.action;
        if (!a || !a.action_id || state.decided.has(a.action_id)) return;
        const isNew = !state.pending.has(a.action_id);
        state.pending.set(a.action_id, a);
        state.seenAt.set(a.action_id, ++state.eventSeq);
        render();
        if (isNew) announce(`New action waiting: ${a.tool} ${summarize(a)}`);
        // Never opened by itself: the person chooses what to review.
        updatePosition();
        break;
      }
      case 'action.scored': {
        const a = state.pending.get(msg.action_id);
        if (!a) return;
        a.tier2_status = msg.tier2_status;
        a.tier2 = msg.tier2 || null;
        a.disagreement = Boolean(msg.disagreement);
        if ('tier2_error' in msg) a.tier2_error = msg.tier2_error;
        render();
        if (state.current === a.action_id) fillModal(a);
        break;
      }
      case 'action.decided': {
        const a = msg.action;
        if (!a || !a.action_id) return;
        onDecided(a, !state.decidedHere.has(a.action_id));
        break;
      }
      default:
        break;
    }
  }

  /** Records a decision, wherever it was made, and moves the modal on if it showed that action. */
  function onDecided(action, elsewhere) {
    const id = action.action_id;
    const wasPending = state.pending.delete(id);
    state.seenAt.delete(id);
    state.decided.add(id);
    state.dismissed.delete(id);
    mergeRecent([action]);
    render();
    if (state.current === id) {
      if (elsewhere) {
        const what = describeDecision(action);
        toast(`${action.tool} was ${what} before you decided.`, 'warn');
        announce(`The action on screen was ${what}.`);
      }
      // No auto-advance: the next action is the person's choice, not the next click's.
      closeModal();
    } else if (wasPending && elsewhere) {
      announce(`${action.tool} ${summarize(action)}: ${describeDecision(action)}.`);
    }
  }

  function describeDecision(action) {
    const d = action.decision;
    const by = d ? d.decided_by : action.decided_by;
    const verdict = d ? d.verdict : action.verdict;
    if (by === 'timeout') return 'rejected: its deadline passed';
    if (by === 'human') return verdict === 'allow' ? 'approved elsewhere' : 'denied elsewhere';
    return verdict === 'allow' ? `allowed (${by})` : `rejected (${by})`;
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering of the lists.

  function pendingSorted() {
    return [...state.pending.values()].sort((x, y) =>
      (x.created_at_ms - y.created_at_ms) || String(x.action_id).localeCompare(String(y.action_id)));
  }

  function render() {
    const pending = pendingSorted();
    el.pendingList.replaceChildren(...pending.map(pendingRow));
    el.pendingEmpty.hidden = pending.length > 0 || state.signedOut;
    el.pendingMore.hidden = !state.moreThanShown;
    el.recentList.replaceChildren(...state.recent.map(recentRow));
    el.recentEmpty.hidden = state.recent.length > 0 || state.signedOut;
    const n = pending.length;
    el.pendingCount.textContent = `${n} pending`;
    el.pendingCount.classList.toggle('has-pending', n > 0);
    el.pendingCount.hidden = state.signedOut;
    document.title = n > 0 ? `(${n}) Gatehouse` : 'Gatehouse';
  }

  function pendingRow(a) {
    const deadline = h('span', {
      class: 'countdown', 'data-deadline': typeof a.deadline_ms === 'number' ? a.deadline_ms : '',
      'data-testid': 'row-deadline',
    });
    paintDeadline(deadline);
    const button = h('button', {
      type: 'button', class: 'row',
      'aria-label': `Review ${a.tool}: ${summarize(a)}`,
      onclick: () => openModal(a.action_id),
    },
    h('span', { class: 'tool', title: a.tool }, a.tool),
    h('span', { class: 'row-main' },
      h('span', { class: 'row-summary', title: summarize(a), 'data-testid': 'row-summary' }, summarize(a)),
      h('span', { class: 'row-meta' },
        a.disagreement ? h('span', { class: 'flag' }, 'classifier disagrees · ') : null,
        who(a))),
    tier2Badge(a),
    h('span', { class: 'row-age', 'data-since': a.created_at_ms }, formatAge(a.created_at_ms)),
    deadline);
    return h('li', { 'data-testid': 'pending-row', 'data-action-id': a.action_id }, button);
  }

  function recentRow(a) {
    const note = a.decision && a.decision.note ? ` · note: ${a.decision.note}` : '';
    return h('li', { class: 'recent', 'data-testid': 'recent-row', 'data-action-id': a.action_id },
      h('div', { class: 'row' },
        h('span', { class: 'tool', title: a.tool }, a.tool),
        h('div', { class: 'row-main' },
          h('div', { class: 'row-summary', title: summarize(a) }, summarize(a)),
          h('div', { class: 'row-meta' }, who(a) + note)),
        h('span', { class: 'row-when' }, verdictBadge(a), ' ',
          h('span', { title: new Date(decidedAt(a)).toLocaleString() }, formatClock(decidedAt(a))))));
  }

  /** Once a second: countdowns and ages, without rebuilding rows (keeps focus and hover). */
  function tick() {
    document.querySelectorAll('[data-deadline]').forEach(paintDeadline);
    document.querySelectorAll('[data-since]').forEach((node) => {
      node.textContent = formatAge(Number(node.dataset.since));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The modal.

  /** After a list (re)load: the action on screen may have been decided while we were away. */
  function reconcileModal() {
    const id = state.current;
    if (id && !state.pending.has(id)) {
      const decided = state.recent.find((a) => a.action_id === id);
      toast(decided
        ? `${decided.tool} was ${describeDecision(decided)} before you decided.`
        : 'The action on screen is no longer pending.', 'warn');
      closeModal();
    } else if (id) {
      fillModal(state.pending.get(id));
    }
  }

  function openModal(id) {
    const a = state.pending.get(id);
    if (!a || state.signedOut) return;
    const changed = state.current !== id;
    state.current = id;
    state.dismissed.delete(id);
    if (changed) {
      el.note.value = '';
      showModalError(null);
    }
    fillModal(a);
    setBusy(false);
    if (changed) armButtons();
    if (!el.modal.open) el.modal.showModal();
    // Focus goes to the heading, never to Approve: Enter or Space must not decide.
    if (changed || document.activeElement !== el.note) el.heading.focus();
  }

  /** The decision buttons wake up a moment after an action is shown, so a click meant for
   *  something else (or a double click) does not land on them. */
  function armButtons() {
    clearTimeout(state.armTimer);
    state.armed = false;
    el.approve.disabled = true;
    el.deny.disabled = true;
    state.armTimer = setTimeout(() => {
      state.armed = true;
      setBusy(state.busy);
    }, ARM_DELAY_MS);
  }

  function closeModal() {
    state.current = null;
    if (el.modal.open) el.modal.close('programmatic');
  }

  function updatePosition() {
    if (!state.current) return;
    const list = pendingSorted();
    const index = list.findIndex((a) => a.action_id === state.current);
    el.position.textContent = list.length > 1
      ? `Paused action · ${index + 1} of ${list.length} waiting`
      : 'Paused action';
  }

  function fillModal(a) {
    state.currentHash = a.action_hash || null;
    setVisible(el.title, a.tool);
    setVisible(el.summary, summarize(a) || '(no input)');
    const hidden = hasHidden(JSON.stringify(a.input)) || hasHidden(a.tool) || hasHidden(a.cwd);
    el.hiddenWarning.hidden = !hidden;
    renderCommands(a);
    setText(el.rule, a.rule_id || (a.decided_by === 'default' ? 'none (policy default)' : null));
    setText(el.reason, a.reason);
    setText(el.agent, a.agent);
    setText(el.session, a.session_id);
    setText(el.cwd, a.cwd);
    setText(el.id, a.action_id);
    el.created.textContent = `${formatClock(a.created_at_ms)} (${formatAge(a.created_at_ms)})`;
    setVisible(el.input, prettyJson(a.input));
    const hasContext = a.context !== null && a.context !== undefined &&
      !(typeof a.context === 'object' && Object.keys(a.context).length === 0);
    el.contextWrap.hidden = !hasContext;
    setVisible(el.context, hasContext ? prettyJson(a.context) : '');
    el.disagreement.hidden = !a.disagreement;
    el.tier2.replaceChildren(...tier2Detail(a));
    setText(el.thresholds, thresholdsText());
    el.deadline.dataset.deadline = typeof a.deadline_ms === 'number' ? String(a.deadline_ms) : '';
    paintDeadline(el.deadline);
    updatePosition();
  }

  function tier2Detail(a) {
    const t = a.tier2;
    if (t && typeof t.score === 'number') {
      return [tier2Badge(a), h('span', { class: 'muted' }, `model ${t.model}`)];
    }
    return [h('span', { class: 'muted' }, tier2Words(a))];
  }

  function setBusy(busy) {
    state.busy = busy;
    el.approve.disabled = busy || !state.armed;
    el.deny.disabled = busy || !state.armed;
  }

  function showModalError(text) {
    el.modalError.hidden = !text;
    el.modalError.textContent = text || '';
  }

  async function decide(decision) {
    const id = state.current;
    if (!id || state.busy) return;
    const note = el.note.value.trim();
    // Bound to what is on screen: the daemon refuses it (409 action_mismatch) for any other action.
    const body = { decision, action_hash: state.currentHash };
    if (note) body.note = note;
    setBusy(true);
    showModalError(null);
    state.decidedHere.add(id);
    try {
      let result;
      if (state.presence && state.presence.mode === 'webauthn') {
        // The person's presence: the authenticator signs a challenge bound to this action,
        // its hash and this decision; a bearer secret alone cannot decide.
        body.presence = await confirmPresence(`/v1/actions/${encodeURIComponent(id)}/presence`,
          { decision, action_hash: state.currentHash });
      }
      try {
        result = await api(`/v1/actions/${encodeURIComponent(id)}/decision`, { method: 'POST', body });
      } catch (e) {
        if (e.status !== 403 || e.code !== 'csrf') throw e;
        // The CSRF token may have been rotated: fetch a fresh one and try once more.
        await loadSession();
        result = await api(`/v1/actions/${encodeURIComponent(id)}/decision`, { method: 'POST', body });
      }
      const a = result && result.action_id ? result : { ...state.pending.get(id) };
      const verb = decision === 'approve' ? 'Approved' : 'Denied';
      announce(`${verb} ${a.tool || ''} ${summarize(a)}`);
      toast(`${verb}: ${a.tool || ''} ${summarize(a)}`, decision === 'approve' ? 'ok' : 'bad');
      if (result && result.action_id) onDecided(result, false);
      else { state.pending.delete(id); state.decided.add(id); render(); if (state.current === id) closeModal(); }
    } catch (e) {
      state.decidedHere.delete(id);
      if (state.current !== id) return;
      if (e.status === 401) return; // signOut() took over the page
      if (e.code === 'presence' || (e.code && e.code.startsWith('presence_'))) {
        setBusy(false);
        showModalError(`Not decided: ${e.message}`);
        return;
      }
      if (e.code === 'action_mismatch') {
        setBusy(false);
        showModalError('The action changed since it was shown; nothing was decided. Check it again.');
        loadActions().catch(reportLoadError);
        return;
      }
      if (e.status === 409 || e.code === 'already_decided') {
        toast(`Someone else already decided this ${state.pending.get(id)?.tool || 'action'}. ${e.message || ''}`.trim(), 'warn');
        announce('That action was already decided elsewhere.');
        state.pending.delete(id);
        state.decided.add(id);
        render();
        closeModal();
        loadActions().catch(reportLoadError);
        return;
      }
      if (e.status === 404) {
        toast('That action no longer exists.', 'warn');
        state.pending.delete(id);
        render();
        closeModal();
        return;
      }
      setBusy(false);
      showModalError(`Could not record the decision: ${e.message}`);
    } finally {
      if (state.current !== id) setBusy(false);
    }
  }


  /** Each simple command of a compound shell action, with the rules' verdict on it alone. */
  function renderCommands(a) {
    const id = a.action_id;
    el.commandsWrap.hidden = true;
    el.commands.replaceChildren();
    api(`/v1/actions/${encodeURIComponent(id)}/commands`).then((result) => {
      if (state.current !== id || !result || !Array.isArray(result.commands)) return;
      if (result.commands.length < 2) return;
      el.commands.replaceChildren(...result.commands.map((c) => h('li', {
        'data-testid': 'command-row', 'data-verdict': c.verdict, 'data-kind': c.kind,
      },
      h('span', { class: `badge ${c.verdict === 'allow' ? 'badge-allow' : c.verdict === 'reject' ? 'badge-reject' : 'badge-timeout'}` },
        c.verdict === 'pending' ? 'needs a person' : c.verdict),
      h('span', { class: 'command-text' }, c.command),
      h('span', { class: 'command-reason' }, c.rule_id ? `${c.rule_id}: ${c.reason}` : c.reason))));
      el.commandsWrap.hidden = false;
    }).catch(() => {});
  }

  // ---------------------------------------------------------------------------------------------
  // Person presence (WebAuthn): the authenticator confirms each decision.

  function b64urlToBytes(text) {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function bytesToB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = '';
    for (const b of bytes) raw += String.fromCharCode(b);
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function presenceOriginProblem() {
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
  async function confirmPresence(path, challengeBody) {
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

  async function loadPresence() {
    try {
      state.presence = await api('/v1/presence');
    } catch (e) {
      if (e.status === 401) return;
      state.presence = null;
    }
    renderPresence();
  }

  function renderPresence() {
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

  function showPresenceError(text) {
    el.presenceError.hidden = !text;
    el.presenceError.textContent = text || '';
  }

  /** Registers a new credential with options from `POST /v1/presence/enrol`. */
  async function createCredential(options) {
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

  async function enrolWithCode(ev) {
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

  async function addAuthenticator() {
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

  // ---------------------------------------------------------------------------------------------
  // The review view: the queue of actions to label malicious or benign.

  const REVIEW_REASONS = {
    disagreement: 'rules allowed, classifier flagged',
    approved_flagged: 'approved though flagged',
    denied_unflagged: 'denied though not flagged',
    flagged: 'flagged',
  };

  function thresholdsText() {
    const c = state.classifier;
    if (!c) return null;
    return `flag ≥ ${c.flag_threshold.toFixed(2)} · disagreement ≥ ${c.disagreement_threshold.toFixed(2)} · model ${c.model}`;
  }

  /** Whether an event can change the review queue: a label, a disagreement, a person's decision. */
  function reviewMayChange(msg) {
    switch (msg && msg.type) {
      case 'action.labelled': return true;
      case 'action.scored': return Boolean(msg.disagreement);
      case 'action.decided': return Boolean(msg.action && msg.action.decided_by === 'human' && msg.action.tier2);
      default: return false;
    }
  }

  function scheduleReviewLoad() {
    clearTimeout(state.reviewTimer);
    state.reviewTimer = setTimeout(() => loadReview().catch(reportLoadError), REVIEW_RELOAD_MS);
  }

  async function loadReview() {
    const seq = ++state.reviewSeq;
    const filter = state.review.filter;
    const list = await api(`/v1/review?status=${encodeURIComponent(filter)}&limit=${REVIEW_LIMIT}`);
    if (seq !== state.reviewSeq || state.signedOut || !list) return; // a newer load is in flight
    state.review = {
      filter,
      items: list.items || [],
      unlabelled: list.unlabelled || 0,
      labelled: list.labelled || 0,
      more: Boolean(list.next_before),
    };
    state.classifier = list.classifier || null;
    renderReview();
    if (state.current && state.pending.has(state.current)) setText(el.thresholds, thresholdsText());
  }

  function renderReview() {
    const r = state.review;
    el.reviewList.replaceChildren(...r.items.map(reviewRow));
    el.reviewEmpty.hidden = r.items.length > 0;
    el.reviewEmpty.textContent = r.filter === 'labelled'
      ? 'No labelled actions yet.'
      : r.filter === 'all'
        ? 'The review queue is empty.'
        : 'Nothing to label. Actions the rules allowed and the classifier flagged, and decisions that went against the score, appear here.';
    el.reviewCounts.textContent = `${r.unlabelled} to label · ${r.labelled} labelled${r.more ? ' · newest shown' : ''}`;
    setText(el.reviewThresholds, thresholdsText());
    for (const button of el.reviewFilters) {
      button.setAttribute('aria-pressed', String(button.dataset.reviewFilter === r.filter));
    }
  }

  function humanDecision(a) {
    const d = a.decision;
    if (!d || d.decided_by !== 'human') return null;
    return d.verdict === 'allow' ? 'approved by a person' : 'denied by a person';
  }

  function labelBadge(label) {
    if (!label) return h('span', { class: 'badge badge-none', 'data-testid': 'review-label' }, 'unlabelled');
    const cls = label.label === 'malicious' ? 'badge badge-reject' : 'badge badge-allow';
    const by = label.reviewer ? ` by ${label.reviewer}` : '';
    return h('span', { class: cls, 'data-testid': 'review-label', title: `labelled ${label.label}${by}` }, label.label);
  }

  function reviewRow(item) {
    const a = item.action;
    const busy = state.labelling.has(a.action_id);
    const meta = [
      REVIEW_REASONS[item.reason] || item.reason,
      `rule ${a.rule_id || (a.decided_by === 'default' ? 'none (default)' : '—')}`,
      a.tier2 ? `model ${a.tier2.model}` : null,
      humanDecision(a),
      who(a),
    ].filter(Boolean).join(' · ');
    const labelButton = (label, text, cls) => h('button', {
      type: 'button', class: `btn btn-small ${cls}`, disabled: busy,
      'data-testid': `label-${label}`,
      'aria-pressed': String(Boolean(item.label && item.label.label === label)),
      'aria-label': `Label ${a.tool} ${summarize(a)} ${label}`,
      onclick: () => labelAction(a.action_id, label),
    }, text);
    return h('li', {
      class: 'review', 'data-testid': 'review-row', 'data-action-id': a.action_id,
      'data-reason': item.reason, 'data-label': item.label ? item.label.label : '',
    },
    h('div', { class: 'row' },
      h('span', { class: 'tool', title: a.tool }, a.tool),
      h('div', { class: 'row-main' },
        h('div', { class: 'row-summary', title: summarize(a), 'data-testid': 'review-summary' }, summarize(a)),
        h('div', { class: 'row-meta', title: meta, 'data-testid': 'review-meta' }, meta),
        h('details', { class: 'context' },
          h('summary', {}, 'Input'),
          h('pre', { class: 'code', 'data-testid': 'review-input' }, prettyJson(a.input)))),
      h('span', { class: 'row-when' }, verdictBadge(a), tier2Badge(a), labelBadge(item.label)),
      h('span', { class: 'review-buttons' },
        labelButton('malicious', 'Malicious', 'btn-deny'),
        labelButton('benign', 'Benign', 'btn-benign'))));
  }

  async function labelAction(id, label) {
    if (state.labelling.has(id)) return;
    state.labelling.add(id);
    renderReview();
    const path = `/v1/actions/${encodeURIComponent(id)}/label`;
    try {
      try {
        await api(path, { method: 'POST', body: { label } });
      } catch (e) {
        if (e.status !== 403) throw e;
        // The CSRF token may have been rotated: fetch a fresh one and try once more.
        await loadSession();
        await api(path, { method: 'POST', body: { label } });
      }
      const item = state.review.items.find((i) => i.action.action_id === id);
      const what = item ? `${item.action.tool} ${summarize(item.action)}` : id;
      toast(`Labelled ${label}: ${what}`, label === 'malicious' ? 'bad' : 'ok');
      announce(`Labelled ${label}.`);
    } catch (e) {
      if (e.status === 401) return; // signOut() took over the page
      toast(`Could not record the label: ${e.message}`, 'warn');
    } finally {
      state.labelling.delete(id);
      renderReview();
    }
    await loadReview().catch(reportLoadError);
  }

  // ---------------------------------------------------------------------------------------------
  // Page state: connection, sign-out, announcements.

  function setConnection(kind) {
    const labels = {
      connecting: 'Connecting…',
      connected: 'Connected',
      reconnecting: 'Reconnecting…',
      'signed-out': 'Signed out',
    };
    el.conn.dataset.state = kind;
    el.connText.textContent = labels[kind] || kind;
  }

  function signOut() {
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

  function reportLoadError(e) {
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

  async function loadHealth() {
    let health;
    try {
      const res = await fetch('/healthz', { credentials: 'same-origin', cache: 'no-store' });
      health = await res.json();
    } catch (e) {
      return; // the connection indicator already says the daemon is unreachable
    }
    showHealth(health);
  }

  function showHealth(health) {
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

  function announce(text) {
    // Clear first so the same message twice is still read out.
    el.announcer.textContent = '';
    setTimeout(() => { el.announcer.textContent = text; }, 50);
  }

  function toast(text, kind) {
    const node = h('div', { class: `toast toast-${kind || 'ok'}`, 'data-testid': 'toast' }, text);
    el.toasts.append(node);
    setTimeout(() => node.remove(), TOAST_MS);
  }

  // ---------------------------------------------------------------------------------------------
  // Start.

  async function start() {
    Object.assign(el, {
      conn: $('connection-status'),
      connText: document.querySelector('#connection-status .conn-text'),
      pendingCount: $('pending-count'),
      banner: $('banner'),
      healthBanner: $('health-banner'),
      content: $('content'),
      pendingList: $('pending-list'),
      pendingEmpty: $('pending-empty'),
      pendingMore: $('pending-more'),
      recentList: $('recent-list'),
      recentEmpty: $('recent-empty'),
      announcer: $('announcer'),
      toasts: $('toasts'),
      modal: $('modal'),
      position: $('modal-position'),
      title: $('modal-title'),
      deadline: $('modal-deadline'),
      summary: $('modal-summary'),
      disagreement: $('modal-disagreement'),
      rule: $('modal-rule'),
      reason: $('modal-reason'),
      tier2: $('modal-tier2'),
      agent: $('modal-agent'),
      session: $('modal-session'),
      cwd: $('modal-cwd'),
      created: $('modal-created'),
      id: $('modal-id'),
      input: $('modal-input'),
      contextWrap: $('modal-context-wrap'),
      context: $('modal-context'),
      note: $('modal-note'),
      modalError: $('modal-error'),
      approve: $('btn-approve'),
      deny: $('btn-deny'),
      later: $('btn-later'),
      thresholds: $('modal-thresholds'),
      reviewList: $('review-list'),
      reviewEmpty: $('review-empty'),
      reviewCounts: $('review-counts'),
      reviewThresholds: $('review-thresholds'),
      reviewFilters: [...document.querySelectorAll('[data-review-filter]')],
      heading: $('modal-title'),
      hiddenWarning: $('modal-hidden-chars'),
      commands: $('modal-commands'),
      commandsWrap: $('modal-commands-wrap'),
      presenceBanner: $('presence-banner'),
      presencePanel: $('presence-panel'),
      presenceStatus: $('presence-status'),
      presenceEnrol: $('presence-enrol'),
      presenceAdd: $('presence-add'),
      presenceError: $('presence-error'),
      enrolCode: $('enrol-code'),
      addAuthenticator: $('btn-add-authenticator'),
    });
    el.presenceEnrol.addEventListener('submit', enrolWithCode);
    el.addAuthenticator.addEventListener('click', addAuthenticator);

    el.approve.addEventListener('click', () => decide('approve'));
    el.deny.addEventListener('click', () => decide('deny'));
    el.later.addEventListener('click', () => el.modal.close('dismissed'));
    for (const button of el.reviewFilters) {
      button.addEventListener('click', () => {
        state.review.filter = button.dataset.reviewFilter;
        renderReview();
        loadReview().catch(reportLoadError);
      });
    }
    // Esc (the dialog's cancel) and "Later" both land here: dismissed without deciding.
    el.modal.addEventListener('close', () => {
      if (el.modal.open) return; // reopened before this (queued) event ran
      if (el.modal.returnValue !== 'programmatic' && state.current) {
        state.dismissed.add(state.current);
      }
      el.modal.returnValue = '';
      state.current = null;
    });

    render();
    setInterval(tick, 1000);
    loadHealth();
    setInterval(loadHealth, HEALTH_POLL_MS);

    try {
      await loadSession();
      await loadPresence();
    } catch (e) {
      if (e.status !== 401) {
        setConnection('reconnecting');
        reportLoadError(e);
        scheduleReconnect();
      }
      return;
    }
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
