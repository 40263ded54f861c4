//! One HTTP exchange with the daemon over TCP or its Unix socket (`node:http`, kept-alive
//! connections). Failures are classified the way the Rust client does it, so the caller knows what
//! a retry risks: `NotSent` (connecting failed), `Interrupted` (the connection broke after the
//! request may have arrived), or a final `GatehouseError` (timeout, an error status, garbage).
//!
//! `node:http` rather than `fetch`: one code path for TCP and the check socket (`socketPath`),
//! errors told apart by their `code` (refused vs reset), and no extra layer on the hot path.

import http from "node:http";

import type { Endpoint } from "./config.js";
import { GatehouseApiError, GatehouseError, GatehouseTimeout, GatehouseUnavailable } from "./errors.js";

export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EACCES",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
const USER_AGENT = "gatehouse-typescript/0.1.0";

/** Connecting failed: the request never reached the daemon. */
export class NotSent extends Error {}
/** The connection failed after the request may have reached the daemon. */
export class Interrupted extends Error {}

/** A 2xx body as JSON; any other status as `GatehouseApiError`. */
export function decode(status: number, body: Buffer): unknown {
  if (status >= 200 && status < 300) {
    try {
      return JSON.parse(body.toString("utf8"));
    } catch (err) {
      throw new GatehouseUnavailable(
        `unexpected response from the gatehouse daemon: ${status} body is not JSON: ${(err as Error).message}`,
      );
    }
  }
  let envelope: Record<string, unknown> | null = null;
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    const error = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>).error : null;
    if (typeof error === "object" && error !== null) envelope = error as Record<string, unknown>;
  } catch {
    envelope = null;
  }
  if (envelope !== null && typeof envelope.code === "string") {
    const field = typeof envelope.field === "string" ? envelope.field : undefined;
    throw new GatehouseApiError(status, envelope.code, String(envelope.message ?? ""), field);
  }
  throw new GatehouseApiError(status, "unknown", body.subarray(0, 200).toString("utf8"));
}

export class Transport {
  private readonly agent: http.Agent;
  private readonly headers: Record<string, string>;

  constructor(readonly endpoint: Endpoint) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.headers = { "content-type": "application/json", "user-agent": USER_AGENT };
    if (endpoint.token) this.headers.authorization = `Bearer ${endpoint.token}`;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One exchange, bounded as a whole by `limitMs`; never retried here. */
  request(method: string, path: string, body: string | null, limitMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let connected = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const headers = { ...this.headers };
      if (body !== null) headers["content-length"] = String(Buffer.byteLength(body));
      const options: http.RequestOptions = {
        method,
        path: this.endpoint.prefix + path,
        headers,
        agent: this.agent,
      };
      if (this.endpoint.socketPath !== null) {
        options.socketPath = this.endpoint.socketPath;
        options.host = "localhost";
      } else {
        options.host = this.endpoint.host;
        options.port = this.endpoint.port;
      }
      const req = http.request(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            settle(() => reject(new GatehouseUnavailable(`response larger than ${MAX_RESPONSE_BYTES} bytes`)));
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          settle(() => {
            try {
              resolve(decode(res.statusCode ?? 0, Buffer.concat(chunks)));
            } catch (err) {
              reject(err);
            }
          });
        });
        res.on("error", (err) => settle(() => reject(new Interrupted(`connection to the gatehouse daemon lost: ${err.message}`))));
        res.on("aborted", () => settle(() => reject(new Interrupted("connection to the gatehouse daemon lost mid-answer"))));
      });
      req.on("socket", (socket) => {
        // A kept-alive socket is connected already; a new one says so once.
        if (!socket.connecting) connected = true;
        else {
          socket.once("connect", () => {
            connected = true;
            socket.setNoDelay(true);
          });
        }
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        settle(() => {
          if (err instanceof GatehouseError) reject(err);
          else if (!connected && err.code !== undefined && CONNECT_CODES.has(err.code)) {
            reject(new NotSent(`gatehouse daemon unreachable: ${err.message}`));
          } else if (err.code === "HPE_INVALID_CONSTANT" || err.code?.startsWith("HPE_")) {
            reject(new GatehouseUnavailable(`unexpected response from the gatehouse daemon: ${err.message}`));
          } else reject(new Interrupted(`connection to the gatehouse daemon lost: ${err.message}`));
        });
      });
      const timer = setTimeout(() => {
        settle(() => reject(new GatehouseTimeout("timed out waiting for the gatehouse daemon")));
        req.destroy();
      }, Math.max(1, limitMs));
      req.end(body ?? undefined);
    });
  }
}
