// Sessions: the agent sessions recently active (`GET /v1/ledger/sessions`), and one session's
// timeline, oldest first — "what did this agent do": each call, the verdict, and what happened
// when it ran (`GET /v1/ledger/actions?session=ID&order=asc`).

import { api } from './api.js';
import { registerView } from './console.js';
import { h, setText } from './dom.js';
import { summarize, formatClock, formatDuration, formatLatency, tier2Badge } from './format.js';
import { openDetail, outcomeWords, standingBadge } from './ledger.js';
import { reportLoadError } from './page.js';

const SESSIONS_PAGE = 50;
const TIMELINE_PAGE = 100;

const $ = (id) => document.getElementById(id);

const list = { sessions: [], cursor: null, seq: 0, loaded: false };
const timeline = { id: null, rows: [], cursor: null, seq: 0 };

async function loadSessions({ append }) {
  const seq = ++list.seq;
  if (!append) {
    list.sessions = [];
    list.cursor = null;
  }
  const q = new URLSearchParams({ limit: String(SESSIONS_PAGE) });
  if (list.cursor) q.set('cursor', list.cursor);
  try {
    const page = await api(`/v1/ledger/sessions?${q}`);
    if (seq !== list.seq) return;
    list.sessions.push(...page.sessions);
    list.cursor = page.next_cursor || null;
    list.loaded = true;
  } catch (e) {
    reportLoadError(e);
  }
  renderSessions();
}

function renderSessions() {
  $('sessions-list').replaceChildren(...list.sessions.map(sessionRow));
  $('sessions-empty').hidden = list.sessions.length > 0 || !list.loaded;
  $('sessions-more').hidden = !list.cursor;
}

function counts(s) {
  const parts = [`${s.actions} action${s.actions === 1 ? '' : 's'}`, `${s.allowed} allowed`, `${s.rejected} rejected`];
  if (s.paused) parts.push(`${s.paused} asked a person`);
  if (s.pending) parts.push(`${s.pending} waiting`);
  return parts.join(' · ');
}

function sessionRow(s) {
  return h('li', { 'data-testid': 'session-row', 'data-session-id': s.session_id },
    h('a', { class: 'row session-row', href: `#session=${encodeURIComponent(s.session_id)}` },
      h('span', { class: 'tool', title: s.agent || 'unknown agent' }, s.agent || 'agent?'),
      h('span', { class: 'row-main' },
        h('span', { class: 'row-summary', title: s.session_id }, s.session_id),
        h('span', { class: 'row-meta', 'data-testid': 'session-counts' }, [counts(s), s.cwd].filter(Boolean).join(' · '))),
      h('span', { class: 'row-age', title: new Date(s.last_ms).toLocaleString() },
        `${formatClock(s.first_ms)} – ${formatClock(s.last_ms)}`)));
}

// ---------------------------------------------------------------------------------------------
// One session's timeline.

async function loadTimeline({ append }) {
  const seq = ++timeline.seq;
  if (!append) {
    timeline.rows = [];
    timeline.cursor = null;
  }
  const q = new URLSearchParams({ session: timeline.id, order: 'asc', limit: String(TIMELINE_PAGE) });
  if (timeline.cursor) q.set('cursor', timeline.cursor);
  try {
    const page = await api(`/v1/ledger/actions?${q}`);
    if (seq !== timeline.seq) return;
    timeline.rows.push(...page.rows);
    timeline.cursor = page.next_cursor || null;
  } catch (e) {
    reportLoadError(e);
  }
  renderTimeline();
}

function renderTimeline() {
  const rows = timeline.rows;
  const first = rows[0];
  const last = rows[rows.length - 1];
  setText($('timeline-session'), timeline.id);
  setText($('timeline-agent'), first ? first.agent : null);
  setText($('timeline-cwd'), first ? first.cwd : null);
  setText($('timeline-span'), first
    ? `${new Date(first.created_at_ms).toLocaleString()} – ${new Date(last.created_at_ms).toLocaleString()}` +
      ` (${formatDuration(last.created_at_ms - first.created_at_ms)})`
    : null);
  const ledgerLink = $('timeline-ledger-link');
  ledgerLink.href = `#ledger?session=${encodeURIComponent(timeline.id || '')}`;
  let previous = null;
  $('timeline-list').replaceChildren(...rows.map((row) => {
    const gap = previous === null ? null : row.created_at_ms - previous;
    previous = row.created_at_ms;
    return timelineItem(row, gap);
  }));
  $('timeline-empty').hidden = rows.length > 0;
  $('timeline-more').hidden = !timeline.cursor;
}

function timelineItem(row, gapMs) {
  const outcome = outcomeWords(row.outcome);
  const decision = row.decision && row.decision.decided_by === 'human'
    ? `${row.decision.verdict === 'allow' ? 'approved' : 'denied'} after ${formatLatency(row.decision.decided_at_ms - row.created_at_ms)}`
    : null;
  return h('li', { class: 'timeline-item', 'data-testid': 'timeline-item', 'data-action-id': row.action_id, 'data-verdict': row.verdict },
    h('span', { class: 'timeline-when', title: new Date(row.created_at_ms).toLocaleString() },
      formatClock(row.created_at_ms),
      gapMs !== null && gapMs >= 60_000 ? h('span', { class: 'timeline-gap' }, `+${formatDuration(gapMs)}`) : null),
    h('span', { class: 'timeline-dot', 'data-verdict': row.verdict, 'aria-hidden': 'true' }),
    h('button', { type: 'button', class: 'timeline-body', onclick: () => openDetail(row.action_id),
      'aria-label': `History of ${row.tool}: ${summarize(row)}` },
      h('span', { class: 'timeline-head' },
        h('span', { class: 'tool' }, row.tool), standingBadge(row), tier2Badge(row)),
      h('span', { class: 'row-summary', 'data-testid': 'timeline-summary' }, summarize(row)),
      h('span', { class: 'row-meta' },
        [row.rule_id ? `rule ${row.rule_id}` : null, decision, outcome].filter(Boolean).join(' · ') || row.reason)));
}

export function setupSessions() {
  $('sessions-more').addEventListener('click', () => loadSessions({ append: true }));
  $('timeline-more').addEventListener('click', () => loadTimeline({ append: true }));
  registerView('sessions', { show: () => loadSessions({ append: false }) });
  registerView('session', {
    show: (params) => {
      timeline.id = params.get('id') || '';
      loadTimeline({ append: false });
    },
  });
}
