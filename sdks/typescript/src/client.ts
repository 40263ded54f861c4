//! `Gatehouse`: ask whether a tool call may run, and wait through a pause.
//!
//! *Invariant*: `check()` fails closed. It resolves only with a `Decision` the daemon gave (`allow`
//! or `reject`, or `pending` when asked not to wait); a daemon that is down, hangs past the
//! deadline, answers an error status or nonsense, and an action still pending at the deadline, all
//! reject the promise. `require()` also rejects with `ActionRejected` on a reject verdict.
//!
//! *Retries*: every check carries a `session_id` and a `tool_use_id` (generated when not given), so
//! the daemon re-attaches a re-sent check to the same action; after a lost connection the check is
//! re-sent and polls are retried, a few times with a short backoff, within the deadline (the rules
//! of the Rust client, crates/gatehouse-client).

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import { type Endpoint, resolveEndpoint } from "./config.js";
import { type Decision, parseDecision } from "./decision.js";
import { ActionRejected, GatehouseError, GatehouseTimeout, GatehouseUnavailable } from "./errors.js";
import { Interrupted, NotSent, Transport } from "./transport.js";

const DEFAULT_TIMEOUT_MS = 600_000;
const DEFAULT_POLL_WAIT_MS = 25_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 65_000;
const MAX_WAIT_MS = 60_000;
const LONG_POLL_MARGIN_MS = 5_000;
const MIN_POLL_INTERVAL_MS = 100;
const MAX_RETRIES = 4;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1_000;

export interface GatehouseOptions {
  /** `http://127.0.0.1:7400` (default) or `unix:/path/check.sock`; else `GATEHOUSE_URL`, then `GATEHOUSE_SOCKET`. */
  url?: string;
  /** Else `GATEHOUSE_TOKEN`, then `agent.token` in the data directory. */
  token?: string;
  /** Sent with every check that names none (default: a random `sdk-…` per client). */
  sessionId?: string;
  /** The `agent` field of each check, e.g. `my-app`. */
  agent?: string;
  /** How long a check may take in all, pauses included (default 10 minutes). */
  timeoutMs?: number;
  /** How long one request asks the daemon to hold a paused action (default 25 s). */
  pollWaitMs?: number;
  /** Hard limit of one HTTP attempt (default 65 s). */
  requestTimeoutMs?: number;
  /** The environment to read the configuration from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

export interface CheckOptions {
  sessionId?: string;
  /** Pass the framework's tool-call id: a re-sent check with it re-attaches to the same action. */
  toolUseId?: string;
  cwd?: string;
  context?: Record<string, unknown>;
  agent?: string;
  /** `true` (default) waits through a pause; a number waits at most that many ms in all; `false` may resolve `pending`. */
  wait?: boolean | number;
  /** `require()` only: the caller runs `decision.updatedInput` when a person edited the input (otherwise such an approval rejects). */
  acceptEdits?: boolean;
}

export function newToolUseId(): string {
  return `gh_${randomUUID().replaceAll("-", "")}`;
}

function timeLeft(deadline: number): number {
  const left = deadline - performance.now();
  if (left <= 0) throw new GatehouseTimeout("timed out waiting for the gatehouse daemon (the check's deadline passed)");
  return left;
}

function backoff(retries: number, deadline: number, err: Error): number {
  const delay = Math.min(FIRST_BACKOFF_MS * 2 ** retries, MAX_BACKOFF_MS);
  if (retries >= MAX_RETRIES || performance.now() + delay >= deadline) {
    throw new GatehouseUnavailable(err.message);
  }
  return delay;
}

export class Gatehouse {
  readonly endpoint: Endpoint;
  readonly sessionId: string;
  readonly agent: string | undefined;
  private readonly transport: Transport;
  private readonly timeoutMs: number;
  private readonly pollWaitMs: number;
  private readonly requestTimeoutMs: number;

  constructor(options: GatehouseOptions = {}) {
    this.endpoint = resolveEndpoint(options.url, options.token, options.env ?? process.env);
    this.sessionId = options.sessionId ?? `sdk-${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    this.agent = options.agent;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pollWaitMs = options.pollWaitMs ?? DEFAULT_POLL_WAIT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(this.timeoutMs > 0 && this.pollWaitMs >= 0 && this.requestTimeoutMs > 0)) {
      throw new RangeError("timeoutMs and requestTimeoutMs must be positive, pollWaitMs not negative");
    }
    this.transport = new Transport(this.endpoint);
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.transport.close();
  }

  /**
   * Asks whether `tool` may run with `input`. By default it waits through a pause and resolves
   * `allow` or `reject`; with `wait: false` it may resolve `pending`.
   */
  async check(tool: string, input: Record<string, unknown>, options: CheckOptions = {}): Promise<Decision> {
    if (typeof tool !== "string" || tool.trim() === "") throw new GatehouseError("tool must be a non-blank string");
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      throw new GatehouseError("input must be an object (the tool's arguments)");
    }
    const wait = options.wait ?? true;
    const total = typeof wait === "number" ? wait : this.timeoutMs;
    if (!(total > 0)) throw new RangeError("wait must be true, false or a positive number of ms");
    const deadline = performance.now() + total;
    const body: Record<string, unknown> = {
      tool,
      input,
      session_id: options.sessionId ?? this.sessionId,
      tool_use_id: options.toolUseId ?? newToolUseId(),
    };
    if (options.cwd !== undefined) body.cwd = options.cwd;
    if (options.context !== undefined) body.context = options.context;
    const agent = options.agent ?? this.agent;
    if (agent !== undefined) body.agent = agent;
    let encoded: string;
    try {
      encoded = JSON.stringify(body);
    } catch (err) {
      throw new GatehouseError(`the check cannot be sent as JSON: ${(err as Error).message}`);
    }
    const decision = await this.post(encoded, wait === false ? 0 : this.pollWaitMs, deadline);
    if (decision.verdict !== "pending" || wait === false) return decision;
    return this.waitFor(decision.actionId, deadline);
  }

  /**
   * Like `check()`, but a reject verdict rejects with `ActionRejected`: it resolves only on allow.
   * An approval of an edited input rejects too, unless `acceptEdits` (the caller then runs
   * `decision.updatedInput`): fail closed, the original input never runs.
   */
  async require(tool: string, input: Record<string, unknown>, options: CheckOptions = {}): Promise<Decision> {
    const { acceptEdits = false, ...checkOptions } = options;
    const decision = await this.check(tool, input, checkOptions);
    if (decision.verdict !== "allow") {
      throw new ActionRejected(decision.reason, decision.actionId, decision.decidedBy, decision.ruleId, decision.note);
    }
    if (decision.updatedInput !== null && !acceptEdits) {
      throw new ActionRejected(
        `a person approved this call only with an edited input, which this caller does not take: make this call instead: ${JSON.stringify(decision.updatedInput)}`,
        decision.actionId,
        decision.decidedBy,
        decision.ruleId,
        decision.note,
      );
    }
    return decision;
  }

  /** One long poll (`GET /v1/actions/{id}?wait_ms=N`); the answer may still be pending. */
  async poll(actionId: string, waitMs: number = DEFAULT_POLL_WAIT_MS): Promise<Decision> {
    const wait = Math.min(Math.max(waitMs, 0), MAX_WAIT_MS);
    try {
      return parseDecision(await this.transport.request("GET", pollPath(actionId, wait), null, wait + LONG_POLL_MARGIN_MS));
    } catch (err) {
      throw unavailable(err);
    }
  }

  private attempt(wanted: number, left: number): [number, number] {
    const margin = Math.min(LONG_POLL_MARGIN_MS, this.requestTimeoutMs / 2);
    const wait = Math.max(0, Math.min(wanted, left, MAX_WAIT_MS, this.requestTimeoutMs - margin));
    const limit = Math.min(wait + margin, this.requestTimeoutMs, left);
    return [Math.floor(wait), limit];
  }

  /** `body` is the check's JSON without `wait_ms`, which each attempt appends. */
  private async post(body: string, wanted: number, deadline: number): Promise<Decision> {
    let retries = 0;
    let reached = false;
    for (;;) {
      const [wait, limit] = this.attempt(wanted, timeLeft(deadline));
      const withWait = `${body.slice(0, -1)},"wait_ms":${wait}}`;
      try {
        return parseDecision(await this.transport.request("POST", "/v1/check", withWait, limit));
      } catch (err) {
        if (err instanceof Interrupted) reached = true;
        else if (!(err instanceof NotSent && reached)) throw unavailable(err);
        await sleep(backoff(retries, deadline, err as Error));
        retries += 1;
      }
    }
  }

  private async waitFor(actionId: string, deadline: number): Promise<Decision> {
    let retries = 0;
    for (;;) {
      const [wait, limit] = this.attempt(this.pollWaitMs, timeLeft(deadline));
      const started = performance.now();
      let answer: unknown;
      try {
        answer = await this.transport.request("GET", pollPath(actionId, wait), null, limit);
      } catch (err) {
        if (!(err instanceof NotSent || err instanceof Interrupted)) throw err;
        await sleep(backoff(retries, deadline, err));
        retries += 1;
        continue;
      }
      retries = 0;
      const decision = parseDecision(answer);
      if (decision.actionId !== actionId) {
        throw new GatehouseUnavailable(`polled action ${actionId}, got an answer for ${decision.actionId}`);
      }
      if (decision.verdict !== "pending") return decision;
      const pause = Math.min(started + MIN_POLL_INTERVAL_MS, deadline) - performance.now();
      if (pause > 0) await sleep(pause);
    }
  }
}

function pollPath(actionId: string, waitMs: number): string {
  if (actionId === "" || actionId === "." || actionId === "..") {
    throw new GatehouseError(`action id ${JSON.stringify(actionId)} cannot be a path segment`);
  }
  return `/v1/actions/${encodeURIComponent(actionId)}?wait_ms=${Math.floor(waitMs)}`;
}

/** Transport-level failures become `GatehouseUnavailable`; SDK errors pass through. */
function unavailable(err: unknown): Error {
  if (err instanceof GatehouseError) return err;
  if (err instanceof NotSent || err instanceof Interrupted) return new GatehouseUnavailable(err.message);
  return new GatehouseUnavailable(err instanceof Error ? err.message : String(err));
}
