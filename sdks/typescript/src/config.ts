//! Where the daemon is and which token to send: arguments, then the environment, then the data
//! directory's `agent.token` (the same order as the `gatehouse` CLI).

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { GatehouseConfigError } from "./errors.js";

export const DEFAULT_URL = "http://127.0.0.1:7400";
export const AGENT_TOKEN_FILE = "agent.token";

/** A resolved daemon address: TCP host and port (plus a path prefix), or a Unix socket. */
export interface Endpoint {
  host: string;
  port: number;
  prefix: string;
  socketPath: string | null;
  token: string;
}

/** `GATEHOUSE_DATA_DIR`, else `$XDG_DATA_HOME/gatehouse`, else `~/.local/share/gatehouse`. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GATEHOUSE_DATA_DIR) return env.GATEHOUSE_DATA_DIR;
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, "gatehouse");
  return join(env.HOME ?? ".", ".local", "share", "gatehouse");
}

function tokenFromEnvOrFile(required: boolean, env: NodeJS.ProcessEnv): string {
  if (env.GATEHOUSE_TOKEN) return env.GATEHOUSE_TOKEN;
  const path = join(dataDir(env), AGENT_TOKEN_FILE);
  try {
    return readFileSync(path, "utf8").trim();
  } catch (err) {
    if (!required) return "";
    const why = err instanceof Error ? err.message : String(err);
    throw new GatehouseConfigError(
      `cannot read ${path} (${why}); pass token, set GATEHOUSE_TOKEN or GATEHOUSE_DATA_DIR`,
    );
  }
}

/** Resolves the endpoint; throws `GatehouseConfigError` saying what to fix. */
export function resolveEndpoint(
  url: string | undefined,
  token: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Endpoint {
  let chosen = url ?? (env.GATEHOUSE_URL || undefined);
  if (chosen === undefined && env.GATEHOUSE_SOCKET) chosen = `unix:${env.GATEHOUSE_SOCKET}`;
  chosen = (chosen ?? DEFAULT_URL).trim();
  const isSocket = chosen.startsWith("unix:");
  let tok = (token ?? tokenFromEnvOrFile(!isSocket, env)).trim();
  if (tok !== "" && !/^[\x21-\x7e]+$/.test(tok)) {
    throw new GatehouseConfigError("invalid token: a token is visible ASCII without spaces");
  }
  if (isSocket) {
    const path = chosen.slice("unix:".length);
    if (path === "") {
      throw new GatehouseConfigError("`unix:` needs the socket's path, like unix:/run/gatehouse/check.sock");
    }
    return { host: "localhost", port: 0, prefix: "", socketPath: path, token: tok };
  }
  let parsed: URL;
  try {
    parsed = new URL(chosen);
  } catch {
    throw new GatehouseConfigError(`invalid daemon URL ${JSON.stringify(chosen)}: not a URL`);
  }
  let problem: string | null = null;
  if (parsed.protocol !== "http:") problem = "only plain http is supported (the daemon listens on loopback)";
  else if (!parsed.hostname) problem = "no host";
  else if (parsed.username || parsed.password) problem = "credentials belong in the token, not the URL";
  else if (parsed.search || parsed.hash || chosen.includes("?") || chosen.includes("#")) {
    problem = "a query or fragment has no meaning here";
  }
  if (problem) throw new GatehouseConfigError(`invalid daemon URL ${JSON.stringify(chosen)}: ${problem}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  tok = tok.trim();
  return {
    host,
    port: parsed.port ? Number(parsed.port) : 80,
    prefix: parsed.pathname.replace(/\/+$/, ""),
    socketPath: null,
    token: tok,
  };
}
