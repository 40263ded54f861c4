// Dashboard state shared by the modules: tunables, the page's state object and its element table.

export const RECENT_LIMIT = 50;
export const PENDING_LIMIT = 200;
export const SOON_MS = 10_000;
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15_000;
export const TOAST_MS = 6_000;
export const REVIEW_LIMIT = 100;
export const REVIEW_RELOAD_MS = 150;
export const HEALTH_POLL_MS = 3_000;
/** How long the decision buttons stay disabled after an action is shown. */
export const ARM_DELAY_MS = 600;

export const state = {
  csrf: null,
  signedOut: false,
  /** @type {Map<string, object>} pending ActionViews by action_id */
  pending: new Map(),
  /** @type {object[]} decided ActionViews, newest first */
  recent: [],
  /** ids known to be decided: guards against a stale list racing a live event */
  decided: new Set(),
  /** ids the person dismissed with Esc / Later: not opened automatically again */
  dismissed: new Set(),
  /** ids this page just decided, so their `action.decided` echo is not reported as "elsewhere" */
  decidedHere: new Set(),
  current: null,
  /** the action_hash of the action the modal shows: a decision names exactly that action */
  currentHash: null,
  busy: false,
  moreThanShown: false,
  ws: null,
  wsAttempt: 0,
  reconnectTimer: null,
  loadSeq: 0,
  /** event counter, and the count at which each pending action was last pushed to us */
  eventSeq: 0,
  seenAt: new Map(),
  /** the review queue as last read: which filter, its items, the whole queue's counts */
  review: { filter: 'unlabelled', items: [], unlabelled: 0, labelled: 0, more: false },
  /** model and thresholds (`ClassifierInfo`), from the review queue */
  classifier: null,
  reviewTimer: null,
  reviewSeq: 0,
  /** ids with a label request in flight */
  labelling: new Set(),
  /** whether the decision buttons may be pressed yet (see armButtons) */
  armed: false,
  armTimer: null,
  /** `GET /v1/presence`: how decisions are confirmed, enrolled authenticators */
  presence: null,
};

export const $ = (id) => document.getElementById(id);
export const el = {};
