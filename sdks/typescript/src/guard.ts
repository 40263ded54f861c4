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
  /**
   * Turns a person's edited input back into the call's arguments (edit then approve). Default:
   * the inverse of the default `toInput` (`{ args: [...] }` → the args, else the object as the
   * single argument). With a custom `toInput` and no `fromInput`, an edited approval rejects.
   */
  fromInput?: (input: Record<string, unknown>) => unknown[];
}

let defaultClient: Gatehouse | undefined;

function shared(): Gatehouse {
  defaultClient ??= new Gatehouse();
  return defaultClient;
}

function defaultArgs(input: Record<string, unknown>): unknown[] {
  const keys = Object.keys(input);
  if (keys.length === 1 && keys[0] === "args" && Array.isArray(input.args)) return input.args;
  return [input];
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
  const fromInput = options.fromInput ?? (options.toInput === undefined ? defaultArgs : undefined);
  return async (...args: A): Promise<R> => {
    const client = options.client ?? shared();
    const checkOptions = options.cwd === undefined ? {} : { cwd: options.cwd };
    const decision = await client.require(tool, toInput(args), { ...checkOptions, acceptEdits: fromInput !== undefined });
    if (decision.updatedInput !== null && fromInput !== undefined) {
      return fn(...(fromInput(decision.updatedInput) as A));
    }
    return fn(...args);
  };
}
