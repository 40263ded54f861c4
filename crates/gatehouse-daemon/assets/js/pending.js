// The pending and recent-decision lists: `GET /v1/actions`, live pending/scored/decided events,
// and the rows; a decision made anywhere moves an action from one list to the other.

import { api } from './api.js';
import { h } from './dom.js';
import { summarize, formatAge, formatClock, paintDeadline, who, tier2Badge, verdictBadge } from './format.js';
import { reconcileModal, openModal, closeModal, updatePosition, fillModal } from './modal.js';
import { announce, toast } from './page.js';
import { RECENT_LIMIT, PENDING_LIMIT, state, el } from './state.js';

export async function loadActions() {
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
export function openFromAddress() {
  const match = /^#action=([A-Za-z0-9_]+)$/.exec(location.hash);
  if (!match || state.current || !state.pending.has(match[1])) return;
  history.replaceState(null, '', location.pathname);
  openModal(match[1]);
}

export function mergeRecent(actions) {
  const byId = new Map(state.recent.map((a) => [a.action_id, a]));
  for (const a of actions) {
    byId.set(a.action_id, a);
    state.decided.add(a.action_id);
  }
  state.recent = [...byId.values()]
    .sort((x, y) => decidedAt(y) - decidedAt(x))
    .slice(0, RECENT_LIMIT);
}

export function decidedAt(a) {
  return (a.decision && a.decision.decided_at_ms) || a.created_at_ms || 0;
}

/** A live event about a pending or decided action. */
export function handleActionEvent(msg) {
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
export function onDecided(action, elsewhere) {
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

export function describeDecision(action) {
  const d = action.decision;
  const by = d ? d.decided_by : action.decided_by;
  const verdict = d ? d.verdict : action.verdict;
  if (by === 'timeout') return 'rejected: its deadline passed';
  if (by === 'human') return verdict === 'allow' ? 'approved elsewhere' : 'denied elsewhere';
  return verdict === 'allow' ? `allowed (${by})` : `rejected (${by})`;
}

// ---------------------------------------------------------------------------------------------
// Rendering of the lists.

export function pendingSorted() {
  return [...state.pending.values()].sort((x, y) =>
    (x.created_at_ms - y.created_at_ms) || String(x.action_id).localeCompare(String(y.action_id)));
}

export function render() {
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

export function pendingRow(a) {
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

export function recentRow(a) {
  const note = a.decision && a.decision.note ? ` · note: ${a.decision.note}` : '';
  // An approval of an edited input ran the edited one: show that, and say it was edited.
  const edit = a.decision && a.decision.edit;
  const ran = edit && edit.edited_input !== undefined ? { ...a, input: edit.edited_input } : a;
  const edited = edit ? ` · edited by ${edit.edited_by || 'a person'}` : '';
  return h('li', { class: 'recent', 'data-testid': 'recent-row', 'data-action-id': a.action_id },
    h('div', { class: 'row' },
      h('span', { class: 'tool', title: a.tool }, a.tool),
      h('div', { class: 'row-main' },
        h('div', { class: 'row-summary', title: summarize(ran) }, summarize(ran)),
        h('div', { class: 'row-meta' }, who(a) + edited + note)),
      h('span', { class: 'row-when' }, verdictBadge(a), ' ',
        h('span', { title: new Date(decidedAt(a)).toLocaleString() }, formatClock(decidedAt(a))))));
}

/** Once a second: countdowns and ages, without rebuilding rows (keeps focus and hover). */
export function tick() {
  document.querySelectorAll('[data-deadline]').forEach(paintDeadline);
  document.querySelectorAll('[data-since]').forEach((node) => {
    node.textContent = formatAge(Number(node.dataset.since));
  });
}
