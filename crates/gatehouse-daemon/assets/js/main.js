// Gatehouse dashboard entry point: finds the page's elements, wires the modules together, starts.
//
// Data flow: `GET /v1/session` (CSRF token) → `GET /v1/actions` (pending + recent) → WebSocket
// `/v1/events` for live changes (events.js), reloading on every (re)connect. Decisions go to
// `POST /v1/actions/{id}/decision`. Each feature lives in its own module under /assets/js/ and
// hooks in here: `onEvent` for live events, `onConnected` for reloads.

import { loadSession } from './api.js';
import { startConsole } from './console.js';
import { connect, scheduleReconnect, onEvent, onConnected } from './events.js';
import { decide } from './modal.js';
import { setupEdit } from './edit.js';
import { setupGrants } from './grants.js';
import { setupLedger } from './ledger.js';
import { setupOverview } from './overview.js';
import { setupPolicy } from './policy.js';
import { setConnection, reportLoadError, loadHealth } from './page.js';
import { render, tick, handleActionEvent, loadActions } from './pending.js';
import { loadPresence, enrolWithCode, addAuthenticator } from './presence.js';
import { loadReview, renderReview, reviewMayChange, scheduleReviewLoad } from './review.js';
import { setupSessions } from './sessions.js';
import { $, HEALTH_POLL_MS, state, el } from './state.js';

async function start() {
  Object.assign(el, {
    conn: $('connection-status'),
    connText: document.querySelector('#connection-status .conn-text'),
    pendingCount: $('pending-count'),
    banner: $('banner'),
    healthBanner: $('health-banner'),
    content: $('content'),
    pendingList: $('pending-list'),
    pendingEmpty: $('pending-empty'),
    pendingMore: $('pending-more'),
    recentList: $('recent-list'),
    recentEmpty: $('recent-empty'),
    announcer: $('announcer'),
    toasts: $('toasts'),
    modal: $('modal'),
    position: $('modal-position'),
    title: $('modal-title'),
    deadline: $('modal-deadline'),
    summary: $('modal-summary'),
    disagreement: $('modal-disagreement'),
    rule: $('modal-rule'),
    reason: $('modal-reason'),
    tier2: $('modal-tier2'),
    agent: $('modal-agent'),
    session: $('modal-session'),
    cwd: $('modal-cwd'),
    created: $('modal-created'),
    id: $('modal-id'),
    input: $('modal-input'),
    contextWrap: $('modal-context-wrap'),
    context: $('modal-context'),
    note: $('modal-note'),
    modalError: $('modal-error'),
    approve: $('btn-approve'),
    deny: $('btn-deny'),
    later: $('btn-later'),
    thresholds: $('modal-thresholds'),
    reviewList: $('review-list'),
    reviewEmpty: $('review-empty'),
    reviewCounts: $('review-counts'),
    reviewThresholds: $('review-thresholds'),
    reviewFilters: [...document.querySelectorAll('[data-review-filter]')],
    heading: $('modal-title'),
    hiddenWarning: $('modal-hidden-chars'),
    commands: $('modal-commands'),
    commandsWrap: $('modal-commands-wrap'),
    presenceBanner: $('presence-banner'),
    presencePanel: $('presence-panel'),
    presenceStatus: $('presence-status'),
    presenceEnrol: $('presence-enrol'),
    presenceAdd: $('presence-add'),
    presenceError: $('presence-error'),
    enrolCode: $('enrol-code'),
    addAuthenticator: $('btn-add-authenticator'),
  });
  el.presenceEnrol.addEventListener('submit', enrolWithCode);
  el.addAuthenticator.addEventListener('click', addAuthenticator);

  el.approve.addEventListener('click', () => decide('approve'));
  el.deny.addEventListener('click', () => decide('deny'));
  el.later.addEventListener('click', () => el.modal.close('dismissed'));
  for (const button of el.reviewFilters) {
    button.addEventListener('click', () => {
      state.review.filter = button.dataset.reviewFilter;
      renderReview();
      loadReview().catch(reportLoadError);
    });
  }
  // Esc (the dialog's cancel) and "Later" both land here: dismissed without deciding.
  el.modal.addEventListener('close', () => {
    if (el.modal.open) return; // reopened before this (queued) event ran
    if (el.modal.returnValue !== 'programmatic' && state.current) {
      state.dismissed.add(state.current);
    }
    el.modal.returnValue = '';
    state.current = null;
  });

  // Live events and reloads: the review queue first (as before the split), then the lists.
  onEvent((msg) => { if (reviewMayChange(msg)) scheduleReviewLoad(); });
  onEvent(handleActionEvent);
  onConnected(loadActions);
  onConnected(loadReview);

  // The console's views (ledger, sessions, overview) and the navigation between them.
  setupLedger();
  setupSessions();
  setupOverview();
  setupPolicy();
  // Standing grants: "Approve and allow similar…", the grants panel, suggestions.
  setupGrants(onConnected, onEvent);
  // Edit then approve, and deny with a note, in the decision dialog.
  setupEdit();
  startConsole();

  render();
  setInterval(tick, 1000);
  loadHealth();
  setInterval(loadHealth, HEALTH_POLL_MS);

  try {
    await loadSession();
    await loadPresence();
  } catch (e) {
    if (e.status !== 401) {
      setConnection('reconnecting');
      reportLoadError(e);
      scheduleReconnect();
    }
    return;
  }
  connect();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
