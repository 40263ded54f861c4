// The ledger browser: every checked action, filtered (verdict, who decided, tool, agent,
// session, project, time, score) and searched (words in the input), newest first, paged by
// cursor (`GET /v1/ledger/actions`); the current filter exported as JSONL or CSV
// (`GET /v1/ledger/export`); and an action's whole history in a dialog.

import { api } from './api.js';
import { registerView, navigate } from './console.js';
import { h, setText, setVisible } from './dom.js';
import { summarize, prettyJson, formatClock, formatDuration, who, tier2Badge, verdictBadge } from './format.js';
import { reportLoadError } from './page.js';

const PAGE = 50;
/** A search reads a bounded stretch of the ledger per request: keep reading this many
 *  stretches to fill a page before asking the person to continue. */
const MAX_AUTO_PAGES = 8;

/** Filter fields: the form's input names, as the API names them. */
const FIELDS = ['q', 'verdict', 'decided_by', 'paused', 'tool', 'agent', 'session', 'cwd', 'rule',
  'since', 'until', 'min_score', 'max_score'];

const ledger = {
  params: new URLSearchParams(),
  rows: [],
  cursor: null,
  scanned: 0,
  loading: false,
  seq: 0,
};

const $ = (id) => document.getElementById(id);

/** `datetime-local` text ↔ ms since the epoch (the person's local time). */
function localToMs(text) {
  if (!text) return null;
  const ms = new Date(text).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/** The API query for the filter in `params` (the fragment's form: `since`/`until` as local times). */
export function apiQuery(params) {
  const q = new URLSearchParams();
  for (const [key, value] of params) {
    if (value === '') continue;
    if (key === 'since' || key === 'until') {
      const ms = localToMs(value);
      if (ms !== null) q.set(`${key}_ms`, String(ms));
    } else if (FIELDS.includes(key)) {
      q.set(key, value);
    }
  }
  return q;
}

function fillForm(params) {
  const form = $('ledger-filters');
  for (const name of FIELDS) {
    const input = form.elements.namedItem(name);
    if (input) input.value = params.get(name) || '';
  }
}

function formParams() {
  const form = $('ledger-filters');
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    const input = form.elements.namedItem(name);
    if (input && input.value.trim() !== '') params.set(name, input.value.trim());
  }
  return params;
}

function updateExportLinks() {
  const q = apiQuery(ledger.params);
  for (const format of ['jsonl', 'csv']) {
    const link = $(`ledger-export-${format}`);
    const query = new URLSearchParams(q);
    query.set('format', format);
    link.href = `/v1/ledger/export?${query}`;
  }
}

/** Reads pages until `PAGE` rows are shown or the ledger ends (a bounded number of stretches). */
async function load({ append }) {
  const seq = ++ledger.seq;
  if (!append) {
    ledger.rows = [];
    ledger.cursor = null;
    ledger.scanned = 0;
  }
  ledger.loading = true;
  renderStatus();
  try {
    let want = PAGE;
    for (let i = 0; i < MAX_AUTO_PAGES && want > 0; i += 1) {
      const q = apiQuery(ledger.params);
      q.set('limit', String(want));
      if (ledger.cursor) q.set('cursor', ledger.cursor);
      const page = await api(`/v1/ledger/actions?${q}`);
      if (seq !== ledger.seq) return; // a newer filter took over
      ledger.rows.push(...page.rows);
      ledger.cursor = page.next_cursor || null;
      ledger.scanned += page.scanned || 0;
      want -= page.rows.length;
      if (!ledger.cursor) break;
    }
  } catch (e) {
    if (seq !== ledger.seq) return;
    ledger.cursor = null;
    if (e.field) {
      setText($('ledger-status'), `Not searched: ${e.message}`);
      ledger.loading = false;
      render();
      $('ledger-status').dataset.state = 'error';
      return;
    }
    reportLoadError(e);
  }
  if (seq !== ledger.seq) return;
  ledger.loading = false;
  render();
}

function renderStatus() {
  const status = $('ledger-status');
  status.dataset.state = ledger.loading ? 'loading' : 'ready';
  if (ledger.loading) {
    status.textContent = 'Reading the ledger…';
    return;
  }
  const n = ledger.rows.length;
  status.textContent = `${n} action${n === 1 ? '' : 's'} shown` +
    (ledger.cursor ? ` · ${ledger.scanned.toLocaleString()} read, more below` : ' · end of the ledger');
}

function render() {
  $('ledger-list').replaceChildren(...ledger.rows.map(ledgerRow));
  $('ledger-empty').hidden = ledger.rows.length > 0 || ledger.loading;
  $('ledger-more').hidden = !ledger.cursor;
  renderStatus();
}

/** The verdict as it stands; a paused action still waiting says so (not "rejected"). */
export function standingBadge(action) {
  if (action.verdict === 'pending') {
    return h('span', { class: 'badge badge-timeout', 'data-testid': 'verdict-badge' }, 'Waiting for a person');
  }
  return verdictBadge(action);
}

/** The confinement its rule required, in words (ActionView.confinement): the sandbox profile
 *  it ran in and what that allowed, or the fallback verdict a client that could not confine it
 *  got. `null` when no rule confined it. */
export function confinementWords(c) {
  if (!c || typeof c !== 'object') return null;
  const digest = typeof c.profile_digest === 'string' ? ` (profile ${c.profile_digest.slice(0, 12)}…)` : '';
  if (c.applied === 'fallback') {
    return `required sandbox profile ${c.profile}, but this client cannot confine it: ${c.fallback || 'fallback'} instead${digest}`;
  }
  return `runs confined: sandbox profile ${c.profile}${c.summary ? ` — ${c.summary}` : ''}${digest}`;
}

/** A sandbox denial the outcome reported (`gatehouse sandbox: denied read /home/u/.ssh/id_rsa`,
 *  `… denied connect example.com:443`) as a finding in words: "tried to read /home/u/.ssh/id_rsa". */
export function findingWords(finding) {
  const m = /^gatehouse sandbox: denied (\S+) (.*)$/.exec(String(finding));
  if (!m) return `sandbox: ${finding}`;
  const verb = { read: 'tried to read', write: 'tried to write', connect: 'tried to connect to' }[m[1]] || `tried to ${m[1]}`;
  return `sandbox finding: ${verb} ${m[2]} (denied)`;
}

/** A row's outcome in words: what happened when the tool ran. */
export function outcomeWords(outcome) {
  if (!outcome) return null;
  if (!outcome.ran) return 'did not run';
  const parts = [outcome.exit_code === null || outcome.exit_code === undefined ? 'ran' : `exit ${outcome.exit_code}`];
  if (outcome.findings > 0) parts.push(`${outcome.findings} sandbox denial${outcome.findings === 1 ? '' : 's'}`);
  return parts.join(' · ');
}

function ledgerRow(row) {
  const meta = [
    row.rule_id ? `rule ${row.rule_id}` : null,
    who(row),
    outcomeWords(row.outcome),
  ].filter(Boolean).join(' · ');
  return h('li', { 'data-testid': 'ledger-row', 'data-action-id': row.action_id, 'data-verdict': row.verdict },
    h('button', {
      type: 'button', class: 'row ledger-row',
      'aria-label': `History of ${row.tool}: ${summarize(row)}`,
      onclick: () => openDetail(row.action_id),
    },
    h('span', { class: 'tool', title: row.tool }, row.tool),
    h('span', { class: 'row-main' },
      h('span', { class: 'row-summary', title: summarize(row), 'data-testid': 'ledger-summary' }, summarize(row)),
      h('span', { class: 'row-meta', title: meta }, meta)),
    h('span', { class: 'row-when' }, standingBadge(row), tier2Badge(row)),
    h('span', { class: 'row-age', title: new Date(row.created_at_ms).toLocaleString() }, formatClock(row.created_at_ms))));
}

// ---------------------------------------------------------------------------------------------
// An action's whole history.

const HISTORY_TITLES = {
  recorded: 'Checked',
  scored: 'Scored by the classifier',
  decided: 'Decided',
  answered: 'Answered by a person',
  edited: 'Edited before approval',
  labelled: 'Labelled',
  outcome: 'Outcome reported',
};

function historyFacts(entry) {
  const d = entry.detail || {};
  switch (entry.kind) {
    case 'recorded': return [
      `${d.verdict}${d.decided_by ? ` by ${d.decided_by}` : ''}`,
      d.rule_id ? `rule ${d.rule_id}` : null, d.reason,
      d.observed ? `observe mode: would ${d.observed}` : null,
    ];
    case 'scored': return [
      d.status === 'scored' && typeof d.score === 'number' ? `score ${d.score.toFixed(2)} (advisory)` : d.status,
      d.model ? `model ${d.model}` : null, d.error, d.disagreement ? 'disagrees with the rules' : null,
    ];
    case 'decided': return [
      `${d.verdict} by ${d.decided_by}`, d.note ? `note: ${d.note}` : null,
    ];
    case 'outcome': {
      const findings = Array.isArray(d.findings) ? d.findings : [];
      return [
        d.ran ? (d.exit_code === null || d.exit_code === undefined ? 'ran' : `ran, exit ${d.exit_code}`) : 'did not run',
        typeof d.duration_ms === 'number' ? `took ${formatDuration(d.duration_ms)}` : null,
        d.error, d.flag ? `flag: ${d.flag}` : null,
        ...findings.map(findingWords),
      ];
    }
    default: {
      // A kind this page does not know yet: its facts as they are.
      return Object.entries(d)
        .filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object')
        .map(([k, v]) => `${k}: ${v}`)
        .concat(Object.entries(d)
          .filter(([, v]) => v !== null && typeof v === 'object')
          .map(([k, v]) => `${k}: ${JSON.stringify(v)}`));
    }
  }
}

function historyItem(entry) {
  const facts = historyFacts(entry).filter((f) => f !== null && f !== undefined && f !== '');
  return h('li', { class: 'history-entry', 'data-testid': 'history-entry', 'data-kind': entry.kind },
    h('span', { class: 'history-when', title: new Date(entry.at_ms).toLocaleString() }, formatClock(entry.at_ms)),
    h('span', { class: 'history-body' },
      h('strong', {}, HISTORY_TITLES[entry.kind] || entry.kind),
      ...facts.map((f) => h('span', { class: 'history-fact' }, String(f)))));
}

/** Opens the history dialog for one action. */
export async function openDetail(id) {
  const dialog = $('detail');
  const seq = ++detailSeq;
  $('detail-title').textContent = 'Loading…';
  $('detail-history').replaceChildren();
  $('detail-error').hidden = true;
  if (!dialog.open) dialog.showModal();
  try {
    const [action, history] = await Promise.all([
      api(`/v1/actions/${encodeURIComponent(id)}`),
      api(`/v1/actions/${encodeURIComponent(id)}/history`),
    ]);
    if (seq !== detailSeq) return;
    fillDetail(action, (history && history.history) || []);
  } catch (e) {
    if (seq !== detailSeq) return;
    $('detail-error').hidden = false;
    $('detail-error').textContent = `Could not read this action: ${e.message}`;
  }
}
let detailSeq = 0;

function fillDetail(a, entries) {
  setVisible($('detail-title'), a.tool);
  setVisible($('detail-summary'), summarize(a) || '(no input)');
  $('detail-verdict').replaceChildren(standingBadge(a));
  setText($('detail-rule'), a.rule_id);
  setText($('detail-reason'), a.reason);
  setText($('detail-confinement'), confinementWords(a.confinement));
  $('detail-tier2').replaceChildren(tier2Badge(a));
  setText($('detail-agent'), a.agent);
  const session = $('detail-session');
  if (a.session_id) {
    session.replaceChildren(h('a', {
      href: `#session=${encodeURIComponent(a.session_id)}`, 'data-testid': 'detail-session-link',
      onclick: () => $('detail').close(),
    }, a.session_id));
  } else {
    setText(session, null);
  }
  setText($('detail-cwd'), a.cwd);
  setText($('detail-created'), new Date(a.created_at_ms).toLocaleString());
  setText($('detail-id'), a.action_id);
  setText($('detail-hash'), a.action_hash);
  setVisible($('detail-input'), prettyJson(a.input));
  $('detail-history').replaceChildren(...entries.map(historyItem));
}

// ---------------------------------------------------------------------------------------------

function show(params) {
  ledger.params = params;
  fillForm(params);
  updateExportLinks();
  load({ append: false });
}

export function setupLedger() {
  const form = $('ledger-filters');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    navigate('ledger', formParams());
  });
  form.addEventListener('reset', (ev) => {
    ev.preventDefault();
    navigate('ledger', new URLSearchParams());
  });
  $('ledger-more').addEventListener('click', () => load({ append: true }));
  $('detail-close').addEventListener('click', () => $('detail').close());
  registerView('ledger', { show });
}
