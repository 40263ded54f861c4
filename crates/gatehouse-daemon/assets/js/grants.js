// Standing grants: "Approve and allow similar…" in the decision dialog, the grant dialog (the
// proposed rules, editable, a scope, an expiry and how many past pauses they would have
// allowed), the list of grants with Revoke, and suggestions from repeated approvals.
//
// Nothing is granted without the person: saving approves the action through the same presence
// rules as Approve (or, from a suggestion, confirms it for the action approved before). The
// daemon re-checks everything; the page never decides what may be granted.
//
// Builds its own elements (the button in the decision dialog, the grant dialog, the Grants
// panel of the inbox) so the shared page files only import it.

import { api, loadSession } from './api.js';
import { h, setVisible } from './dom.js';
import { formatAge, formatClock } from './format.js';
import { announce, reportLoadError, toast } from './page.js';
import { loadActions } from './pending.js';
import { confirmPresence } from './presence.js';
import { $, state, el } from './state.js';

const grants = {
  /** the action the grant dialog is for: { id, hash, pending } */
  target: null,
  /** the proposal the dialog shows */
  proposal: null,
  busy: false,
  seq: 0,
};
const g = {};

const EXPIRIES = [['1h', '1 hour'], ['today', 'today'], ['always', 'until revoked']];
const SCOPE_WORDS = { session: 'this session', project: 'this project', everywhere: 'everywhere' };

function scopeText(scope) {
  if (!scope || typeof scope !== 'object') return '?';
  if (scope.kind === 'session') return `session ${scope.session_id}`;
  if (scope.kind === 'project') return `project ${scope.root}`;
  return 'everywhere';
}

/** The person's local midnight, for "today". */
function endOfToday() {
  const d = new Date();
  d.setHours(24, 0, 0, 0);
  return d.getTime();
}

async function post(path, body) {
  try {
    return await api(path, { method: 'POST', body });
  } catch (e) {
    if (e.status !== 403 || e.code !== 'csrf') throw e;
    await loadSession();
    return api(path, { method: 'POST', body });
  }
}

function buildDialog() {
  g.rules = h('textarea', { class: 'code grant-rules', rows: '8', spellcheck: 'false', 'data-testid': 'grant-rules', 'aria-label': 'Rules (JSON)' });
  g.toml = h('pre', { class: 'code', 'data-testid': 'grant-toml', tabindex: '0' });
  g.scopes = h('div', { class: 'review-filters', role: 'radiogroup', 'aria-label': 'Scope', 'data-testid': 'grant-scopes' });
  g.expiry = h('select', { 'data-testid': 'grant-expiry', 'aria-label': 'Expires' },
    ...EXPIRIES.map(([value, words]) => h('option', { value }, words)));
  g.wouldAllow = h('p', { class: 'panel-hint', 'data-testid': 'grant-would-allow', role: 'status' });
  g.error = h('p', { class: 'modal-error', 'data-testid': 'grant-error', role: 'alert', hidden: true });
  g.summary = h('p', { class: 'summary mono', 'data-testid': 'grant-summary' });
  g.preview = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'grant-preview', onclick: previewEdited }, 'Preview');
  g.save = h('button', { type: 'button', class: 'btn btn-approve', 'data-testid': 'grant-save', onclick: save }, 'Approve and save grant');
  g.cancel = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'grant-cancel', onclick: () => g.dialog.close() }, 'Cancel');
  g.dialog = h('dialog', { class: 'modal', id: 'grant-dialog', 'data-testid': 'grant-dialog', 'aria-labelledby': 'grant-title' },
    h('div', { class: 'modal-head' },
      h('div', { class: 'modal-title-wrap' },
        h('span', { class: 'eyebrow' }, 'Standing grant'),
        h('h2', { id: 'grant-title', tabindex: '-1' }, 'Allow similar actions'))),
    h('div', { class: 'modal-body' },
      g.summary,
      h('p', { class: 'panel-hint' },
        'The narrowest rules that cover this action. They only ever turn a pause into an allow: ' +
        'rejects, self-protection, secrets and anything not fully understood still stop.'),
      h('h3', { class: 'sub' }, 'Rules (JSON, editable)'),
      g.rules,
      h('details', { class: 'context' }, h('summary', {}, 'As policy TOML'), g.toml),
      h('h3', { class: 'sub' }, 'Where'),
      g.scopes,
      h('h3', { class: 'sub' }, 'Until'),
      g.expiry,
      g.wouldAllow),
    h('div', { class: 'modal-foot' },
      g.error,
      h('div', { class: 'actions' }, g.cancel, h('span', { class: 'spacer' }), g.preview, g.save)));
  document.body.append(g.dialog);
}

function buildPanel() {
  g.list = h('ul', { class: 'rows', 'data-testid': 'grant-list' });
  g.empty = h('p', { class: 'empty', 'data-testid': 'grant-empty' },
    'No grants. “Approve and allow similar…” on a paused action saves one.');
  g.suggestions = h('ul', { class: 'rows', 'data-testid': 'grant-suggestions' });
  g.panel = h('section', { class: 'panel', 'aria-labelledby': 'grants-title', 'data-testid': 'grants-panel' },
    h('div', { class: 'panel-head' },
      h('h2', { id: 'grants-title' }, 'Standing grants'),
      h('span', { class: 'panel-hint' }, 'Newest first. A grant stops at its expiry or when revoked.')),
    g.suggestions,
    g.list,
    g.empty);
  const review = $('review-panel');
  if (review) review.before(g.panel);
  else el.content.append(g.panel);
}

function buildButton() {
  g.similar = h('button', { type: 'button', class: 'btn btn-ghost', id: 'btn-approve-similar', 'data-testid': 'approve-similar', hidden: true, onclick: openForCurrent },
    'Approve and allow similar…');
  g.refused = h('p', { class: 'panel-hint', 'data-testid': 'grant-refused', hidden: true });
  el.approve.before(g.similar);
  el.approve.closest('.actions')?.after(g.refused);
}

/** The decision dialog shows another action: offer a grant for it, or say why none. */
async function onModalShown() {
  const id = state.current;
  g.similar.hidden = true;
  g.refused.hidden = true;
  if (!id) return;
  const seq = ++grants.seq;
  try {
    const proposal = await api(`/v1/actions/${encodeURIComponent(id)}/grant`);
    if (seq !== grants.seq || state.current !== id) return;
    if (proposal.offered) {
      g.similar.hidden = false;
    } else {
      setVisible(g.refused, `No standing grant for this one: ${proposal.refused ? proposal.refused.message : ''}`);
      g.refused.hidden = false;
    }
  } catch (e) {
    if (e.status !== 401 && e.status !== 404) reportLoadError(e);
  }
}

function showError(text) {
  g.error.hidden = !text;
  g.error.textContent = text || '';
}

function renderScopes(names) {
  g.scopes.replaceChildren(...names.map((name, i) => h('label', { class: 'chip' },
    h('input', { type: 'radio', name: 'grant-scope', value: name, checked: i === Math.min(1, names.length - 1), 'data-testid': `grant-scope-${name}` }),
    ` ${SCOPE_WORDS[name] || name}`)));
}

function wouldAllowText(count, previewed) {
  return `Would have allowed ${count} of the last ${previewed} paused action${previewed === 1 ? '' : 's'}.`;
}

async function openDialog(target, proposal) {
  grants.target = target;
  grants.proposal = proposal;
  showError(null);
  setVisible(g.summary, target.summary || target.id);
  g.rules.value = JSON.stringify(proposal.rules, null, 2);
  setVisible(g.toml, proposal.toml || '');
  renderScopes(proposal.scopes && proposal.scopes.length ? proposal.scopes : ['everywhere']);
  g.expiry.value = '1h';
  setVisible(g.wouldAllow, wouldAllowText(proposal.would_allow, proposal.previewed));
  g.save.textContent = target.pending ? 'Approve and save grant' : 'Save grant';
  g.save.disabled = false;
  if (!g.dialog.open) g.dialog.showModal();
  $('grant-title').focus();
}

async function openForCurrent() {
  const id = state.current;
  const action = id && state.pending.get(id);
  if (!action) return;
  try {
    const proposal = await api(`/v1/actions/${encodeURIComponent(id)}/grant`);
    if (!proposal.offered) {
      toast(proposal.refused ? proposal.refused.message : 'No grant is offered for this action.', 'warn');
      return;
    }
    await openDialog({ id, hash: state.currentHash, pending: true, summary: `${action.tool}: ${(action.input && action.input.command) || ''}` }, proposal);
  } catch (e) {
    if (e.status !== 401) toast(`Cannot propose a grant: ${e.message}`, 'bad');
  }
}

function editedRules() {
  let rules;
  try {
    rules = JSON.parse(g.rules.value);
  } catch (e) {
    throw new Error(`The rules are not valid JSON (${e.message}).`);
  }
  if (!Array.isArray(rules)) throw new Error('The rules must be a JSON array of rule objects.');
  return rules;
}

function chosenScope() {
  const checked = g.scopes.querySelector('input:checked');
  return checked ? checked.value : 'everywhere';
}

async function previewEdited() {
  const target = grants.target;
  if (!target) return;
  showError(null);
  try {
    const result = await post(`/v1/actions/${encodeURIComponent(target.id)}/grant/preview`,
      { rules: editedRules(), scope: chosenScope() });
    setVisible(g.wouldAllow, `${wouldAllowText(result.would_allow, result.previewed)}${result.covers_action ? '' : ' These rules do not cover this action.'}`);
  } catch (e) {
    showError(e.message);
  }
}

async function save() {
  const target = grants.target;
  if (!target || grants.busy) return;
  showError(null);
  let body;
  try {
    body = { action_hash: target.hash, rules: editedRules(), scope: chosenScope() };
  } catch (e) {
    showError(e.message);
    return;
  }
  const expiry = g.expiry.value;
  if (expiry === 'today') body.expires_at_ms = endOfToday();
  else body.expires = expiry;
  grants.busy = true;
  g.save.disabled = true;
  const id = target.id;
  if (target.pending) state.decidedHere.add(id);
  try {
    if (state.presence && state.presence.mode === 'webauthn') {
      body.presence = target.pending
        ? await confirmPresence(`/v1/actions/${encodeURIComponent(id)}/presence`, { decision: 'approve', action_hash: target.hash })
        : await confirmPresence(`/v1/actions/${encodeURIComponent(id)}/grant/presence`, { action_hash: target.hash });
    }
    const created = await post(`/v1/actions/${encodeURIComponent(id)}/grant`, body);
    g.dialog.close();
    if (target.pending && el.modal.open && state.current === id) el.modal.close('programmatic');
    const words = `Saved grant ${created.grant.id} (${scopeText(created.grant.scope)})`;
    toast(words, 'ok');
    announce(words);
    loadActions().catch(reportLoadError);
    loadGrants().catch(reportLoadError);
  } catch (e) {
    if (target.pending) state.decidedHere.delete(id);
    if (e.status === 401) return;
    showError(`Not saved: ${e.message}`);
  } finally {
    grants.busy = false;
    g.save.disabled = false;
  }
}

async function revoke(grant) {
  try {
    await post(`/v1/grants/${encodeURIComponent(grant.id)}/revoke`, {});
    toast(`Revoked grant ${grant.id}`, 'ok');
  } catch (e) {
    if (e.status !== 401) toast(`Cannot revoke: ${e.message}`, 'bad');
  }
  loadGrants().catch(reportLoadError);
}

function grantRow(grant) {
  const rules = grant.rules.map((r) => JSON.stringify(r)).join('  ·  ');
  const expires = grant.expires_at_ms === null ? 'until revoked' : `until ${formatClock(grant.expires_at_ms)}`;
  return h('li', { class: 'recent', 'data-testid': 'grant-row', 'data-grant-id': grant.id, 'data-status': grant.status }, h('div', { class: 'row' },
    h('span', { class: `badge ${grant.status === 'active' ? 'badge-allow' : 'badge-timeout'}`, 'data-testid': 'grant-status' }, grant.status),
    h('span', { class: 'row-main' },
      h('span', { class: 'mono' }, rules),
      h('span', { class: 'muted' }, ` ${scopeText(grant.scope)} · ${expires} · allowed ${grant.allowed} · saved ${formatAge(grant.created_at_ms)} by ${grant.created_by}`)),
    grant.status === 'active'
      ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'grant-revoke', onclick: () => revoke(grant) }, 'Revoke')
      : null));
}

function suggestionRow(s) {
  return h('li', { class: 'recent', 'data-testid': 'grant-suggestion', 'data-action-id': s.action_id }, h('div', { class: 'row' },
    h('span', { class: 'badge badge-timeout' }, 'suggested'),
    h('span', { class: 'row-main' },
      h('span', {}, `You approved this ${s.approvals} times${s.project ? ` in ${s.project}` : ''}: `),
      h('span', { class: 'mono' }, s.summary)),
    h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'grant-suggestion-review', onclick: () => openSuggestion(s) }, 'Review grant…')));
}

async function openSuggestion(s) {
  try {
    const proposal = await api(`/v1/actions/${encodeURIComponent(s.action_id)}/grant`);
    if (!proposal.offered) {
      toast(proposal.refused ? proposal.refused.message : 'No grant is offered for this action.', 'warn');
      return;
    }
    await openDialog({ id: s.action_id, hash: s.action_hash, pending: false, summary: s.summary }, proposal);
  } catch (e) {
    if (e.status !== 401) toast(`Cannot propose a grant: ${e.message}`, 'bad');
  }
}

export async function loadGrants() {
  if (state.signedOut) return;
  const [list, found] = await Promise.all([api('/v1/grants'), api('/v1/grants/suggestions')]);
  g.list.replaceChildren(...list.grants.map(grantRow));
  g.empty.hidden = list.grants.length > 0;
  g.suggestions.replaceChildren(...found.suggestions.map(suggestionRow));
}

/** Builds the grant UI and follows the decision dialog. */
export function setupGrants(onConnected, onEvent) {
  buildDialog();
  buildPanel();
  buildButton();
  // The decision dialog changes action when its id changes or it opens.
  const watch = new MutationObserver(() => { if (el.modal.open) onModalShown(); });
  watch.observe(el.modal, { attributes: true, attributeFilter: ['open'] });
  const idNode = $('modal-id');
  if (idNode) watch.observe(idNode, { childList: true, characterData: true, subtree: true });
  onConnected(loadGrants);
  onEvent((msg) => {
    if (msg && msg.type === 'action.decided') loadGrants().catch(() => {});
  });
}
