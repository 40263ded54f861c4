// Formatting for the dashboard: one-line summaries, durations, clocks, and verdict/score badges.

import { h } from './dom.js';
import { SOON_MS } from './state.js';

export const SUMMARY_KEYS = {
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
export function summarize(action) {
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

export function oneLine(text) {
  const flat = text.replace(/\s*[\r\n]+\s*/g, ' ⏎ ').trim();
  return flat.length > 300 ? flat.slice(0, 299) + '…' : flat;
}

export function prettyJson(value) {
  try { return JSON.stringify(value, null, 2) ?? 'null'; } catch { return String(value); }
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hr / 24)}d`;
}

export function formatAge(sinceMs) {
  const ms = Date.now() - sinceMs;
  if (ms < 5_000) return 'just now';
  return `${formatDuration(ms)} ago`;
}

export function formatClock(ms) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** Text and class of a deadline countdown. */
export function deadlineView(deadlineMs) {
  if (typeof deadlineMs !== 'number') return { text: 'no deadline', cls: 'countdown none' };
  const left = deadlineMs - Date.now();
  if (left <= 0) return { text: 'expired', cls: 'countdown expired' };
  const secs = Math.ceil(left / 1000);
  const text = secs < 60 ? `${secs}s left` : `${formatDuration(left)} left`;
  return { text, cls: left <= SOON_MS ? 'countdown soon' : 'countdown' };
}

export function paintDeadline(node) {
  const raw = node.dataset.deadline;
  const view = deadlineView(raw === undefined || raw === '' ? null : Number(raw));
  node.textContent = view.text;
  node.className = view.cls;
}

export function who(action) {
  const parts = [];
  parts.push(action.agent ? action.agent : 'unknown agent');
  if (action.session_id) parts.push(`session ${action.session_id}`);
  if (action.cwd) parts.push(action.cwd);
  return parts.join(' · ');
}

/** Why an action carries no score, in words a person can act on. */
export function tier2Words(action) {
  switch (action.tier2_status) {
    case 'pending': return 'scoring…';
    case 'timeout': return 'classifier timed out';
    case 'dropped': return 'not scored: scoring queue full';
    case 'disabled': return 'no classifier configured';
    case 'error': return action.tier2_error ? `classifier error: ${action.tier2_error}` : 'classifier error';
    default: return 'not scored';
  }
}

export function scoreClass(score) {
  if (score >= 0.7) return 'badge badge-high';
  if (score >= 0.4) return 'badge badge-mid';
  return 'badge badge-low';
}

/** Tier 2 is advisory: its score is shown neutrally (never a reassuring green "benign"); a
 *  high score is flagged, a low one says nothing about safety. */
export function tier2Badge(action) {
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

export function verdictBadge(action) {
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

/** A wait: milliseconds under a second, tenths of seconds under a minute, then as a duration. */
export function formatLatency(ms) {
  if (typeof ms !== 'number') return '—';
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}
