// The overview (`GET /v1/ledger/overview`): actions per verdict over time, what waits now, how
// long people take to decide (median, p99), the prompt load and the share grants answered, the
// busiest rules and paused commands, the classifier's health, and the policy in force. Reloaded
// (at most once a second) while on screen when an action is checked or decided.

import { api } from './api.js';
import { registerView, currentView } from './console.js';
import { onEvent } from './events.js';
import { h, setText } from './dom.js';
import { formatDuration, formatLatency } from './format.js';
import { reportLoadError } from './page.js';

const HOUR = 3_600_000;
const WINDOWS = { '1h': HOUR, '24h': 24 * HOUR, '7d': 7 * 24 * HOUR, '30d': 30 * 24 * HOUR };
const RELOAD_MS = 1_000;
const SVG = 'http://www.w3.org/2000/svg';
/** The bars' series, bottom to top, with their legend words. */
const SERIES = [
  ['allowed', 'allowed by rule'],
  ['approved', 'approved'],
  ['pending', 'waiting'],
  ['timed_out', 'timed out'],
  ['denied', 'denied'],
  ['rejected', 'rejected by rule'],
];

const $ = (id) => document.getElementById(id);
const ov = { window: '24h', seq: 0, timer: null, loading: false, dirty: false, data: null };

async function load() {
  const seq = ++ov.seq;
  ov.loading = true;
  ov.dirty = false;
  const until = Date.now();
  const q = new URLSearchParams({ since_ms: String(until - WINDOWS[ov.window]), until_ms: String(until) });
  try {
    const data = await api(`/v1/ledger/overview?${q}`);
    if (seq !== ov.seq) return;
    ov.data = data;
    render(data);
  } catch (e) {
    reportLoadError(e);
  } finally {
    if (seq === ov.seq) ov.loading = false;
  }
  // Events that came while this read ran: one more read, never two at once.
  if (seq === ov.seq && ov.dirty) scheduleReload();
}

function scheduleReload() {
  if (ov.timer) return;
  ov.timer = setTimeout(() => { ov.timer = null; load(); }, RELOAD_MS);
}



function render(d) {
  setText($('ov-total'), String(d.total));
  setText($('ov-pending'), String(d.pending_now));
  setText($('ov-prompts'), String(d.prompts.prompts));
  setText($('ov-prompts-rate'), `${d.prompts.prompts_per_hour.toFixed(1)} per hour`);
  setText($('ov-granted'), d.prompts.granted > 0
    ? `${Math.round(d.prompts.granted_share * 100)}%`
    : 'no grants');
  setText($('ov-granted-detail'), `${d.prompts.granted} answered by a grant`);
  setText($('ov-median'), formatLatency(d.latency.median_ms));
  setText($('ov-p99'), formatLatency(d.latency.p99_ms));
  setText($('ov-decisions'), `${d.latency.decisions} decision${d.latency.decisions === 1 ? '' : 's'} by a person`);
  $('ov-chart').replaceChildren(chart(d));
  $('ov-legend').replaceChildren(...SERIES.map(([key, words]) => h('span', { class: 'legend-item' },
    h('span', { class: `swatch series-${key}`, 'aria-hidden': 'true' }), words)));
  $('ov-top-rules').replaceChildren(...d.top_rules.map((e) => topRow(e, 'top-rule')));
  $('ov-top-rules-empty').hidden = d.top_rules.length > 0;
  $('ov-top-paused').replaceChildren(...d.top_paused.map((e) => topRow(e, 'top-paused')));
  $('ov-top-paused-empty').hidden = d.top_paused.length > 0;
  renderClassifier(d.classifier);
  renderPolicy(d.policy);
  for (const chip of document.querySelectorAll('[data-ov-window]')) {
    chip.setAttribute('aria-pressed', String(chip.dataset.ovWindow === ov.window));
  }
}

/** Stacked bars of the verdicts per bucket, as SVG (attributes only: the CSP allows no inline style). */
function chart(d) {
  const width = 600;
  const height = 140;
  const n = Math.max(1, d.buckets.length);
  const max = Math.max(1, ...d.buckets.map((b) => SERIES.reduce((sum, [k]) => sum + b[k], 0)));
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Actions per verdict, ${d.buckets.length} intervals of ${formatDuration(d.bucket_ms)}`);
  const slot = width / n;
  const bar = Math.max(1, slot * 0.8);
  d.buckets.forEach((b, i) => {
    const group = document.createElementNS(SVG, 'g');
    group.setAttribute('data-testid', 'ov-bucket');
    for (const [key] of SERIES) group.setAttribute(`data-${key.replace('_', '-')}`, String(b[key]));
    let y = height;
    for (const [key, words] of SERIES) {
      if (!b[key]) continue;
      const h2 = (b[key] / max) * (height - 4);
      y -= h2;
      const rect = document.createElementNS(SVG, 'rect');
      rect.setAttribute('x', String(i * slot + (slot - bar) / 2));
      rect.setAttribute('y', String(y));
      rect.setAttribute('width', String(bar));
      rect.setAttribute('height', String(h2));
      rect.setAttribute('class', `series-${key}`);
      const title = document.createElementNS(SVG, 'title');
      title.textContent = `${new Date(b.start_ms).toLocaleString()}: ${b[key]} ${words}`;
      rect.append(title);
      group.append(rect);
    }
    svg.append(group);
  });
  return svg;
}

function topRow(entry, testid) {
  return h('li', { class: 'top-row', 'data-testid': testid, 'data-key': entry.key, 'data-count': entry.count },
    h('span', { class: 'top-key mono', title: entry.key }, entry.key),
    h('span', { class: 'top-count' }, String(entry.count)),
    h('span', { class: 'top-split muted' },
      `${entry.allowed} allowed · ${entry.rejected} rejected${entry.paused ? ` · ${entry.paused} asked` : ''}`));
}

function renderClassifier(c) {
  const unscored = c.errors + c.timeouts + c.dropped;
  const state = c.scored + unscored + c.waiting === 0
    ? (c.disabled ? 'off' : 'idle')
    : unscored > 0 ? 'degraded' : 'ok';
  const words = { off: 'No classifier configured', idle: 'Nothing scored in this window', degraded: 'Some actions went unscored', ok: 'Scoring every action' };
  const status = $('ov-classifier-status');
  status.dataset.state = state;
  status.textContent = words[state];
  $('ov-classifier').replaceChildren(...[
    ['scored', c.scored], ['errors', c.errors], ['timed out', c.timeouts], ['dropped (queue full)', c.dropped],
    ['no classifier', c.disabled], ['waiting', c.waiting], ['disagreed with the rules', c.disagreements],
  ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', { 'data-testid': `ov-classifier-${k.split(' ')[0]}` }, String(v)))),
  h('div', {}, h('dt', {}, 'model'), h('dd', { class: 'mono' }, c.model || '—')),
  ...(c.last_error ? [h('div', { class: 'wide' }, h('dt', {}, 'last error'), h('dd', { class: 'mono' }, c.last_error))] : []));
}

function renderPolicy(p) {
  setText($('ov-policy-version'), p.version);
  setText($('ov-policy-reloads'), String(p.reloads));
  const error = $('ov-policy-error');
  error.hidden = !p.reload_error;
  setText(error, p.reload_error ? `Reload refused (the last good policy still decides): ${p.reload_error}` : '');
}

/** A live event: reload soon if the overview is on screen. */
function onLiveEvent(msg) {
  if (currentView() !== 'overview') return;
  if (!msg || !/^action\./.test(msg.type || '')) return;
  if (ov.loading) ov.dirty = true;
  else scheduleReload();
}

export function setupOverview() {
  for (const chip of document.querySelectorAll('[data-ov-window]')) {
    chip.addEventListener('click', () => {
      ov.window = chip.dataset.ovWindow;
      load();
    });
  }
  onEvent(onLiveEvent);
  registerView('overview', { show: load });
}
