// The decision dialog: one paused action in full, and Approve / Deny.
//
// No reflex approvals: nothing opens or focuses Approve by itself, no key approves, and after a
// decision the dialog closes instead of moving on to the next action. With person presence on
// (the default), every decision is confirmed with the person's authenticator (WebAuthn, user
// verification required) over a challenge bound to the action, its hash and the decision.

import { api, loadSession } from './api.js';
import { h, setText, hasHidden, setVisible } from './dom.js';
import { summarize, prettyJson, formatAge, formatClock, paintDeadline, tier2Words, tier2Badge } from './format.js';
import { reportLoadError, announce, toast } from './page.js';
import { loadActions, onDecided, describeDecision, pendingSorted, render } from './pending.js';
import { confirmPresence } from './presence.js';
import { thresholdsText } from './review.js';
import { confinementWords } from './ledger.js';
import { ARM_DELAY_MS, state, el } from './state.js';

/** After a list (re)load: the action on screen may have been decided while we were away. */
export function reconcileModal() {
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

export function openModal(id) {
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
export function armButtons() {
  clearTimeout(state.armTimer);
  state.armed = false;
  el.approve.disabled = true;
  el.deny.disabled = true;
  state.armTimer = setTimeout(() => {
    state.armed = true;
    setBusy(state.busy);
  }, ARM_DELAY_MS);
}

export function closeModal() {
  state.current = null;
  if (el.modal.open) el.modal.close('programmatic');
}

export function updatePosition() {
  if (!state.current) return;
  const list = pendingSorted();
  const index = list.findIndex((a) => a.action_id === state.current);
  el.position.textContent = list.length > 1
    ? `Paused action · ${index + 1} of ${list.length} waiting`
    : 'Paused action';
}

export function fillModal(a) {
  state.currentHash = a.action_hash || null;
  setVisible(el.title, a.tool);
  setVisible(el.summary, summarize(a) || '(no input)');
  const hidden = hasHidden(JSON.stringify(a.input)) || hasHidden(a.tool) || hasHidden(a.cwd);
  el.hiddenWarning.hidden = !hidden;
  renderCommands(a);
  setText(el.rule, a.rule_id || (a.decided_by === 'default' ? 'none (policy default)' : null));
  setText(el.reason, a.reason);
  setText(document.getElementById('modal-confinement'), confinementWords(a.confinement));
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

export function tier2Detail(a) {
  const t = a.tier2;
  if (t && typeof t.score === 'number') {
    return [tier2Badge(a), h('span', { class: 'muted' }, `model ${t.model}`)];
  }
  return [h('span', { class: 'muted' }, tier2Words(a))];
}

export function setBusy(busy) {
  state.busy = busy;
  el.approve.disabled = busy || !state.armed;
  el.deny.disabled = busy || !state.armed;
}

export function showModalError(text) {
  el.modalError.hidden = !text;
  el.modalError.textContent = text || '';
}

/** Decides the action on screen. `edited`: edit then approve (edit.js), the input approved in
 *  place of the one asked for; the daemon re-checks it and binds presence to the edited hash. */
export async function decide(decision, edited) {
  const id = state.current;
  if (!id || state.busy) return;
  const note = el.note.value.trim();
  // Bound to what is on screen: the daemon refuses it (409 action_mismatch) for any other action.
  const body = { decision, action_hash: state.currentHash };
  if (note) body.note = note;
  if (edited) body.input = edited;
  setBusy(true);
  showModalError(null);
  state.decidedHere.add(id);
  try {
    let result;
    if (state.presence && state.presence.mode === 'webauthn') {
      // The person's presence: the authenticator signs a challenge bound to this action,
      // its hash and this decision; a bearer secret alone cannot decide.
      body.presence = await confirmPresence(`/v1/actions/${encodeURIComponent(id)}/presence`,
        edited ? { decision, action_hash: state.currentHash, input: edited }
          : { decision, action_hash: state.currentHash });
    }
    try {
      result = await api(`/v1/actions/${encodeURIComponent(id)}/decision`, { method: 'POST', body });
    } catch (e) {
      if (e.status !== 403 || e.code !== 'csrf') throw e;
      // The CSRF token may have been rotated: fetch a fresh one and try once more.
      await loadSession();
      result = await api(`/v1/actions/${encodeURIComponent(id)}/decision`, { method: 'POST', body });
    }
    const decided = result && result.action_id ? result : { ...state.pending.get(id) };
    // An edited approval is announced with what was approved, not what was asked.
    const a = edited ? { ...decided, input: edited } : decided;
    const verb = decision === 'approve' ? (edited ? 'Approved (edited)' : 'Approved') : 'Denied';
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
    if (e.code === 'edit_refused') {
      setBusy(false);
      showModalError(`Not approved: ${e.message}`);
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
export function renderCommands(a) {
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
