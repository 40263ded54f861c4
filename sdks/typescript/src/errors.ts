//! What can go wrong when asking Gatehouse, as errors: every one of them means "do not run".

/** Base class: the action was not allowed (no answer, a bad answer, or a reject). */
export class GatehouseError extends Error {
  override name = "GatehouseError";
}

/** The SDK cannot be set up: a bad URL, no token, a token that cannot be sent. */
export class GatehouseConfigError extends GatehouseError {
  override name = "GatehouseConfigError";
}

/** No usable answer came: the daemon is down, too slow, or answered something unexpected. */
export class GatehouseUnavailable extends GatehouseError {
  override name = "GatehouseUnavailable";
}

/** The check's deadline passed (the daemon hung, or a person did not decide in time). */
export class GatehouseTimeout extends GatehouseUnavailable {
  override name = "GatehouseTimeout";
}

/** The daemon answered with an error status (`{"error": {"code", "message", "field"}}`). */
export class GatehouseApiError extends GatehouseError {
  override name = "GatehouseApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly field?: string,
  ) {
    super(`gatehouse daemon answered ${status} ${code}: ${detail}${field ? ` (field \`${field}\`)` : ""}`);
  }
}

/** The daemon rejected the action (a rule, a person, the deadline, or a ledger error). */
export class ActionRejected extends GatehouseError {
  override name = "ActionRejected";
  constructor(
    readonly reason: string,
    readonly actionId: string,
    readonly decidedBy: string = "",
    readonly ruleId: string | null = null,
    /** The person's guidance with a denial, for the model to change course. */
    readonly note: string | null = null,
  ) {
    const message = reason ? `rejected by gatehouse: ${reason}` : "rejected by gatehouse";
    super(note && !reason.includes(note) ? `${message} (the person's note: ${note})` : message);
  }
}
