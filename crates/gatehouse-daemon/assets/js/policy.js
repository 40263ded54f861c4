// The policy view (`#policy`): a candidate policy replayed over the recorded actions
// (`POST /v1/policy/replay`) before it is pushed. It shows how many actions would be newly
// rejected, paused or allowed (allowed is the risky direction, so it is highlighted) with
// examples, and offers "Push this version" (`POST /v1/policy/versions`) only for exactly the
// text that was replayed.

import { api } from './api.js';
import { registerView } from './console.js';
import { h, setText } from './dom.js';

const $ = (id) => document.getElementById(id);
/** The text of the last successful replay: the only text the push button pushes. */
let replayed = null;

const CHANGES = [
  ['newly_allowed', 'Newly allowed', 'risky'],
  ['newly_paused', 'Newly paused', ''],
  ['newly_rejected', 'Newly rejected', ''],
];

function showError(node, e) {
  node.hidden = false;
  setText(node, e && e.message ? e.message : String(e));
}

async function replay() {
  const text = $('policy-text').value;
  const error = $('policy-error');
  error.hidden = true;
  $('policy-push').hidden = true;
  $('policy-pushed').hidden = true;
  replayed = null;
  $('policy-replay').disabled = true;
  try {
    const report = await api('/v1/policy/replay', { method: 'POST', body: { policy: text } });
    render(report);
    replayed = text;
    $('policy-push').hidden = false;
  } catch (e) {
    $('policy-report').hidden = true;
    showError(error, e);
  } finally {
    $('policy-replay').disabled = false;
  }
}

function render(report) {
  $('policy-report').hidden = false;
  const changed = report.newly_allowed.count + report.newly_paused.count + report.newly_rejected.count;
  setText($('policy-summary'), `${report.replayed} recorded action(s) replayed; ${changed} would change.`);
  const list = $('policy-changes');
  list.replaceChildren();
  for (const [key, label, tone] of CHANGES) {
    const change = report[key];
    const examples = change.examples.map((x) =>
      h('li', { class: 'replay-example' },
        h('span', { class: 'mono' }, x.tool), ' ',
        h('span', { class: 'mono' }, x.summary), ' ',
        h('span', { class: 'muted' }, `${x.was} (${x.was_rule || 'default'}) → ${x.now} (${x.now_rule || 'default'})`)));
    list.append(h('div', { class: `replay-change ${tone && change.count ? `replay-${tone}` : ''}`, 'data-testid': `replay-${key}` },
      h('h3', { class: 'sub' }, `${label}: `, h('span', { 'data-testid': `replay-${key}-count` }, String(change.count))),
      examples.length ? h('ul', { class: 'replay-examples' }, examples) : null));
  }
}

async function push() {
  const text = $('policy-text').value;
  const error = $('policy-error');
  if (text !== replayed) {
    // Edited since the replay: replay it again first.
    $('policy-push').hidden = true;
    return;
  }
  error.hidden = true;
  $('policy-push').disabled = true;
  try {
    const pushed = await api('/v1/policy/versions', { method: 'POST', body: { text } });
    $('policy-pushed').hidden = false;
    setText($('policy-pushed'), `Pushed: version ${pushed.version} is in force.`);
    $('policy-push').hidden = true;
  } catch (e) {
    showError(error, e);
  } finally {
    $('policy-push').disabled = false;
  }
}

export function setupPolicy() {
  $('policy-replay').addEventListener('click', replay);
  $('policy-push').addEventListener('click', push);
  // Any edit after a replay hides the push button until the new text is replayed.
  $('policy-text').addEventListener('input', () => {
    if ($('policy-text').value !== replayed) $('policy-push').hidden = true;
  });
  registerView('policy', {});
}
