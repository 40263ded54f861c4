// Edit then approve, and deny with a note, in the decision dialog.
//
// "Edit…" opens an editor for the paused action's input: the command line for a shell command,
// and the whole input as JSON. "Check" asks the daemon to re-check the edited input with the
// rules and self-protection (`POST /v1/actions/{id}/edit/check`); "Approve edited" is enabled only
// for the text that was checked, and goes through the same decision (and person presence, bound
// to the edited action's hash) as Approve. The daemon re-checks again when deciding: the page
// never decides what an edit may be. "Deny with note" denies with the note for the agent, and
// refuses to send an empty one.
//
// Builds its own elements; the shared page files only import it.

import { api, loadSession } from './api.js';
import { h, setVisible } from './dom.js';
import { decide, showModalError } from './modal.js';
import { $, state, el } from './state.js';

const edit = {
  /** the action the editor was opened for */
  id: null,
  /** the JSON text last checked and accepted by the daemon, and the input it parsed to */
  checkedText: null,
  checkedInput: null,
  seq: 0,
};
const e = {};

async function post(path, body) {
  try {
    return await api(path, { method: 'POST', body });
  } catch (err) {
    if (err.status !== 403 || err.code !== 'csrf') throw err;
    await loadSession();
    return api(path, { method: 'POST', body });
  }
}

function build() {
  e.command = h('textarea', {
    class: 'code edit-command', rows: '2', spellcheck: 'false', 'data-testid': 'edit-command',
    'aria-label': 'Command line', oninput: commandChanged,
  });
  e.commandWrap = h('div', { class: 'edit-field' },
    h('label', { class: 'note-label' }, 'Command', e.command));
  e.json = h('textarea', {
    class: 'code edit-json', rows: '6', spellcheck: 'false', 'data-testid': 'edit-json',
    'aria-label': 'Input (JSON)', oninput: jsonChanged,
  });
  e.result = h('p', { class: 'panel-hint edit-result', 'data-testid': 'edit-result', role: 'status' });
  e.check = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'edit-check', onclick: check }, 'Check');
  e.approve = h('button', {
    type: 'button', class: 'btn btn-approve', 'data-testid': 'edit-approve', disabled: true, onclick: approveEdited,
  }, 'Approve edited');
  e.cancel = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'edit-cancel', onclick: closeEditor }, 'Cancel edit');
  e.panel = h('section', { class: 'edit-panel', 'data-testid': 'edit-panel', hidden: true, 'aria-label': 'Edit the input' },
    h('h3', { class: 'sub' }, 'Edit, then approve the edited action'),
    h('p', { class: 'panel-hint' },
      'The agent runs the edited input instead of the one it asked for (where its host can take it; ' +
      'otherwise it is told the edited call to make). The rules re-check it first: an edit they would ' +
      'reject is refused.'),
    e.commandWrap,
    h('label', { class: 'note-label' }, 'Input (JSON)', e.json),
    e.result,
    h('div', { class: 'actions' }, e.cancel, h('span', { class: 'spacer' }), e.check, e.approve));
  el.input.after(e.panel);

  e.open = h('button', { type: 'button', class: 'btn btn-ghost', id: 'btn-edit', 'data-testid': 'edit', onclick: openEditor }, 'Edit…');
  e.denyNote = h('button', {
    type: 'button', class: 'btn btn-deny', id: 'btn-deny-note', 'data-testid': 'deny-note', onclick: denyWithNote,
  }, 'Deny with note');
  el.deny.before(e.open);
  el.deny.after(e.denyNote);
}

/** The input as parsed from the JSON box, or null (with the reason shown) if it is not an object. */
function parsedInput() {
  let value;
  try {
    value = JSON.parse(e.json.value);
  } catch (err) {
    showResult(`Not JSON: ${err.message}`, 'bad');
    return null;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    showResult('The input must be a JSON object (the tool’s whole input).', 'bad');
    return null;
  }
  return value;
}

function showResult(text, tone) {
  e.result.dataset.tone = tone || '';
  setVisible(e.result, text || '');
}

/** Any change un-checks the edit: only the text the daemon re-checked can be approved. */
function invalidate() {
  edit.checkedText = null;
  edit.checkedInput = null;
  e.approve.disabled = true;
  showResult('Changed: check it again before approving.', '');
}

function commandChanged() {
  let value;
  try { value = JSON.parse(e.json.value); } catch { value = null; }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    value.command = e.command.value;
    e.json.value = JSON.stringify(value, null, 2);
  }
  invalidate();
}

function jsonChanged() {
  let value;
  try { value = JSON.parse(e.json.value); } catch { value = null; }
  if (value && typeof value.command === 'string' && value.command !== e.command.value) {
    e.command.value = value.command;
  }
  invalidate();
}

function openEditor() {
  const a = state.pending.get(state.current);
  if (!a) return;
  edit.id = a.action_id;
  const input = a.input && typeof a.input === 'object' ? a.input : {};
  e.json.value = JSON.stringify(input, null, 2);
  const hasCommand = typeof input.command === 'string';
  e.commandWrap.hidden = !hasCommand;
  e.command.value = hasCommand ? input.command : '';
  edit.checkedText = null;
  edit.checkedInput = null;
  e.approve.disabled = true;
  showResult('Edit the input, then Check: the rules re-check it before you can approve it.', '');
  e.panel.hidden = false;
  e.open.hidden = true;
  showModalError(null);
  (hasCommand ? e.command : e.json).focus();
}

function closeEditor() {
  edit.id = null;
  edit.checkedText = null;
  edit.checkedInput = null;
  e.panel.hidden = true;
  e.open.hidden = false;
}

async function check() {
  const id = state.current;
  const input = parsedInput();
  if (!id || !input) return;
  const text = e.json.value;
  const seq = ++edit.seq;
  e.check.disabled = true;
  try {
    const result = await post(`/v1/actions/${encodeURIComponent(id)}/edit/check`,
      { action_hash: state.currentHash, input });
    if (seq !== edit.seq || state.current !== id || e.json.value !== text) return;
    edit.checkedText = text;
    edit.checkedInput = input;
    e.approve.disabled = false;
    const rule = result.rule_id ? ` (${result.rule_id}: ${result.reason})` : ` (${result.reason})`;
    showResult(result.unchanged
      ? 'Unchanged: approving it is a plain approval.'
      : `The rules accept the edit: on its own it would ${result.verdict === 'allow' ? 'be allowed' : 'pause for a person'}${rule}. Approving runs the edited input.`,
    'ok');
    e.result.dataset.verdict = result.verdict;
  } catch (err) {
    if (seq !== edit.seq) return;
    e.approve.disabled = true;
    showResult(err.code === 'edit_refused'
      ? `Refused: ${err.message}`
      : `Could not check the edit: ${err.message}`, 'bad');
  } finally {
    if (seq === edit.seq) e.check.disabled = false;
  }
}

async function approveEdited() {
  if (!state.armed || state.busy) return;
  if (edit.checkedText === null || e.json.value !== edit.checkedText || edit.id !== state.current) {
    invalidate();
    return;
  }
  await decide('approve', edit.checkedInput);
}

function denyWithNote() {
  if (!state.armed || state.busy) return;
  if (!el.note.value.trim()) {
    showModalError('Write a note for the agent first: it reads it instead of retrying the same call.');
    el.note.focus();
    return;
  }
  decide('deny');
}

export function setupEdit() {
  build();
  // Another action on screen (or the dialog reopened): the editor starts closed.
  const watch = new MutationObserver(() => {
    if (edit.id && edit.id !== state.current) closeEditor();
    if (!el.modal.open && edit.id) closeEditor();
  });
  watch.observe(el.modal, { attributes: true, attributeFilter: ['open'] });
  const idNode = $('modal-id');
  if (idNode) watch.observe(idNode, { childList: true, characterData: true, subtree: true });
}
