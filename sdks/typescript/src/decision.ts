//! The daemon's answer to a check (`CheckResponse` in docs/API.md), parsed strictly.

import { GatehouseUnavailable } from "./errors.js";

export type Verdict = "allow" | "reject" | "pending";

/** The classifier's advisory score; it never changes a verdict. */
export interface Tier2Score {
  score: number;
  label: string;
  model: string;
}

/** What Gatehouse decided about one action. Only `verdict === "allow"` lets it run. */
export interface Decision {
  actionId: string;
  verdict: Verdict;
  decidedBy: string;
  reason: string;
  ruleId: string | null;
  tier2: Tier2Score | null;
  /** The person's note on their decision (a denial's guidance: "use --dry-run"). */
  note: string | null;
  /**
   * Edit then approve: the input a person approved in place of the one asked for. Run this input,
   * never the original; a caller that cannot must not run the call.
   */
  updatedInput: Record<string, unknown> | null;
  /** The call may run as asked: `verdict === "allow"` without an edited input. */
  allowed: boolean;
  /** A person approved an edited input (`updatedInput`) instead of the one asked for. */
  edited: boolean;
}

const VERDICTS: readonly string[] = ["allow", "reject", "pending"];

function unexpected(value: unknown): GatehouseUnavailable {
  let text: string;
  try {
    text = JSON.stringify(value).slice(0, 200);
  } catch {
    text = String(value).slice(0, 200);
  }
  return new GatehouseUnavailable(`unexpected response from the gatehouse daemon: ${text}`);
}

/** Parses a `CheckResponse`; anything that is not one is `GatehouseUnavailable`. */
export function parseDecision(value: unknown): Decision {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw unexpected(value);
  const v = value as Record<string, unknown>;
  const { action_id: actionId, verdict, decided_by: decidedBy } = v;
  const reason = v.reason ?? "";
  const ruleId = v.rule_id ?? null;
  if (typeof actionId !== "string" || typeof verdict !== "string" || !VERDICTS.includes(verdict)) {
    throw unexpected(value);
  }
  if (typeof decidedBy !== "string" || typeof reason !== "string" || (ruleId !== null && typeof ruleId !== "string")) {
    throw unexpected(value);
  }
  if (verdict === "pending" && actionId === "") {
    throw new GatehouseUnavailable("pending verdict without an action_id");
  }
  const note = v.note ?? null;
  const updatedInput = v.updated_input ?? null;
  if (note !== null && typeof note !== "string") throw unexpected(value);
  if (updatedInput !== null && (typeof updatedInput !== "object" || Array.isArray(updatedInput))) {
    throw unexpected(value);
  }
  let tier2: Tier2Score | null = null;
  const raw = v.tier2;
  if (typeof raw === "object" && raw !== null) {
    const t = raw as Record<string, unknown>;
    if (typeof t.score === "number") {
      tier2 = { score: t.score, label: String(t.label ?? ""), model: String(t.model ?? "") };
    }
  }
  return {
    actionId,
    verdict: verdict as Verdict,
    decidedBy,
    reason,
    ruleId: ruleId as string | null,
    tier2,
    note: note as string | null,
    updatedInput: updatedInput as Record<string, unknown> | null,
    allowed: verdict === "allow" && updatedInput === null,
    edited: verdict === "allow" && updatedInput !== null,
  };
}
