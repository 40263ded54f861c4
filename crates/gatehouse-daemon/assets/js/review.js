// The review view: `GET /v1/review`, the queue of actions to label malicious or benign
// (`POST /v1/actions/{id}/label`), reloaded when a label, a disagreement or a decision is pushed.

import { api, loadSession } from './api.js';
import { h, setText } from './dom.js';
import { summarize, prettyJson, who, tier2Badge, verdictBadge } from './format.js';
import { reportLoadError, announce, toast } from './page.js';
import { REVIEW_LIMIT, REVIEW_RELOAD_MS, state, el } from './state.js';

export const REVIEW_REASONS = {
  disagreement: 'rules allowed, classifier flagged',
  approved_flagged: 'approved though flagged',
  denied_unflagged: 'denied though not flagged',
  flagged: 'flagged',
};

export function thresholdsText() {
  const c = state.classifier;
  if (!c) return null;
  return `flag ≥ ${c.flag_threshold.toFixed(2)} · disagreement ≥ ${c.disagreement_threshold.toFixed(2)} · model ${c.model}`;
}

/** Whether an event can change the review queue: a label, a disagreement, a person's decision. */
export function reviewMayChange(msg) {
  switch (msg && msg.type) {
    case 'action.labelled': return true;
    case 'action.scored': return Boolean(msg.disagreement);
    case 'action.decided': return Boolean(msg.action && msg.action.decided_by === 'human' && msg.action.tier2);
    default: return false;
  }
}

export function scheduleReviewLoad() {
  clearTimeout(state.reviewTimer);
  state.reviewTimer = setTimeout(() => loadReview().catch(reportLoadError), REVIEW_RELOAD_MS);
}

export async function loadReview() {
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

export function renderReview() {
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

export function humanDecision(a) {
  const d = a.decision;
  if (!d || d.decided_by !== 'human') return null;
  return d.verdict === 'allow' ? 'approved by a person' : 'denied by a person';
}

export function labelBadge(label) {
  if (!label) return h('span', { class: 'badge badge-none', 'data-testid': 'review-label' }, 'unlabelled');
  const cls = label.label === 'malicious' ? 'badge badge-reject' : 'badge badge-allow';
  const by = label.reviewer ? ` by ${label.reviewer}` : '';
  return h('span', { class: cls, 'data-testid': 'review-label', title: `labelled ${label.label}${by}` }, label.label);
}

export function reviewRow(item) {
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

export async function labelAction(id, label) {
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
