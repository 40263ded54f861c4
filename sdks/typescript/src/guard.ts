//! `guarded()`: wraps a function so that it runs only after Gatehouse allows the call.

import { Gatehouse } from "./client.js";

export interface GuardOptions {
  /** The tool name the policy sees (default: the function's name). */
  tool?: string;
  /** Default: one client made from the environment on first use. */
  client?: Gatehouse;
  cwd?: string;
  /** Turns the call's arguments into the check's input (default: `{ args: [...] }`, or the single object argument itself). */
  toInput?: (args: unknown[]) => Record<string, unknown>;
}

let defaultClient: Gatehouse | undefined;

function shared(): Gatehouse {
  defaultClient ??= new Gatehouse();
  return defaultClient;
}

function defaultInput(args: unknown[]): Record<string, unknown> {
  const [first] = args;
  if (args.length === 1 && typeof first === "object" && first !== null && !Array.isArray(first)) {
    return first as Record<string, unknown>;
  }
  return { args };
}

/**
 * `guarded(fn, { tool })` returns an async function that checks each call first: the original runs
 * only on `allow`; a reject rejects with `ActionRejected` (reason, action id); no answer rejects
 * with `GatehouseUnavailable`.
 */
export function guarded<A extends unknown[], R>(
  fn: (...args: A) => R | Promise<R>,
  options: GuardOptions = {},
): (...args: A) => Promise<R> {
  const tool = options.tool ?? fn.name;
  if (!tool) throw new TypeError("guarded(): name the tool (the function has no name)");
  const toInput = options.toInput ?? defaultInput;
  return async (...args: A): Promise<R> => {
    const client = options.client ?? shared();
    const checkOptions = options.cwd === undefined ? {} : { cwd: options.cwd };
    await client.require(tool, toInput(args), checkOptions);
    return fn(...args);
  };
}
