// The real Gatehouse daemon for the agent tests: `gatehouse serve` from GATEHOUSE_BIN on a free
// loopback port with its own data directory, its approver API (list, decide, history), its event
// stream (a minimal WebSocket client: node 20 has none built in that can send a token), a daemon
// that hangs (accepts connections, never answers), and the `gatehouse` CLI run in a host's HOME.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { run } from "./hosts.mjs";

export const GATEHOUSE_BIN = process.env.GATEHOUSE_BIN;
const STARTUP_TIMEOUT_MS = 30_000;

export function requireGatehouseBin() {
  assert.ok(GATEHOUSE_BIN, "set GATEHOUSE_BIN to a built gatehouse binary (scripts/test-agents.sh does)");
  assert.ok(fs.existsSync(GATEHOUSE_BIN), `GATEHOUSE_BIN=${GATEHOUSE_BIN} does not exist`);
  return GATEHOUSE_BIN;
}

/**
 * Starts `gatehouse serve --listen 127.0.0.1:0` with `policy` (TOML text); resolves once it has
 * printed its URL. Presence is off: these tests approve through the API as the person would.
 */
export async function startDaemon({ policy, config = "" }) {
  const bin = requireGatehouseBin();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "gh-agents-daemon-"));
  fs.writeFileSync(path.join(dataDir, "policy.toml"), policy);
  fs.writeFileSync(path.join(dataDir, "config.toml"), config);
  const proc = spawn(
    bin,
    ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--policy", path.join(dataDir, "policy.toml"), "--config", path.join(dataDir, "config.toml")],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, HOME: dataDir, TMPDIR: os.tmpdir(), RUST_LOG: "warn", GATEHOUSE_APPROVALS_PRESENCE: "off" },
    },
  );
  const output = [];
  createInterface({ input: proc.stderr }).on("line", (l) => output.push(`[stderr] ${l}`));
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout }).on("line", (line) => {
      output.push(`[stdout] ${line}`);
      const m = line.match(/gatehouse listening on (http:\/\/\S+)/);
      if (m) resolve(m[1].replace(/\/$/, ""));
    });
    proc.once("error", reject);
    proc.once("exit", (code, signal) => reject(new Error(`gatehouse serve exited early (${code}, ${signal}):\n${output.join("\n")}`)));
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gatehouse serve did not start in ${STARTUP_TIMEOUT_MS} ms:\n${output.join("\n")}`)), STARTUP_TIMEOUT_MS);
  });
  let baseUrl;
  try {
    baseUrl = await Promise.race([ready, timeout]);
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const daemon = {
    proc,
    dataDir,
    baseUrl,
    output,
    approverToken: fs.readFileSync(path.join(dataDir, "approver.token"), "utf8").trim(),
    agentToken: fs.readFileSync(path.join(dataDir, "agent.token"), "utf8").trim(),
  };
  return daemon;
}

/** SIGTERM (SIGKILL after 5 s); keeps the data directory unless `remove`. */
export async function stopDaemon(d, { remove = true } = {}) {
  if (!d) return;
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    const exited = new Promise((r) => d.proc.once("exit", r));
    d.proc.kill("SIGTERM");
    const t = setTimeout(() => d.proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(t);
  }
  if (remove) fs.rmSync(d.dataDir, { recursive: true, force: true });
}

async function api(d, method, route, body) {
  const res = await fetch(`${d.baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${d.approverToken}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // leave null
  }
  return { status: res.status, json, text };
}

/** Every action in the ledger, newest first (ActionView). */
export async function listActions(d) {
  const out = [];
  let before = null;
  for (;;) {
    const q = new URLSearchParams({ status: "all", limit: "500", ...(before ? { before } : {}) });
    const r = await api(d, "GET", `/v1/actions?${q}`);
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.actions);
    before = r.json.next_before;
    if (!before) return out;
  }
}

export async function actionHistory(d, id) {
  const r = await api(d, "GET", `/v1/actions/${id}/history`);
  assert.equal(r.status, 200, r.text);
  return r.json.history;
}

/** Approves or denies a paused action, as a person would through the API. */
export async function decide(d, action, decision, note) {
  const r = await api(d, "POST", `/v1/actions/${action.action_id}/decision`, { decision, action_hash: action.action_hash, ...(note ? { note } : {}) });
  assert.equal(r.status, 200, `deciding ${action.action_id}: ${r.text}`);
  return r.json;
}

export { api as daemonApi };

/**
 * Opens the daemon's event stream (GET /v1/events, WebSocket) with the approver token.
 * Returns {next(predicate, timeoutMs) → the first event (parsed JSON) matching, close()}.
 * Events that arrive before next() is called are kept, so open it before starting the agent.
 */
export function openEvents(d) {
  const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString("base64");
  const url = new URL(`${d.baseUrl}/v1/events`);
  const events = [];
  const waiters = [];
  let socket;
  const deliver = (ev) => {
    events.push(ev);
    for (const w of [...waiters]) {
      if (w.predicate(ev)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(ev);
      }
    }
  };
  const opened = new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": key,
        authorization: `Bearer ${d.approverToken}`,
      },
    });
    req.on("upgrade", (_res, sock, head) => {
      socket = sock;
      let buf = head;
      let fragments = [];
      sock.on("data", (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          if (buf.length < 2) return;
          const fin = (buf[0] & 0x80) !== 0;
          const opcode = buf[0] & 0x0f;
          let len = buf[1] & 0x7f;
          let off = 2;
          if (len === 126) {
            if (buf.length < 4) return;
            len = buf.readUInt16BE(2);
            off = 4;
          } else if (len === 127) {
            if (buf.length < 10) return;
            len = Number(buf.readBigUInt64BE(2));
            off = 10;
          }
          if (buf.length < off + len) return;
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (opcode === 1 || opcode === 0) {
            fragments.push(payload);
            if (fin) {
              const text = Buffer.concat(fragments).toString("utf8");
              fragments = [];
              try {
                deliver(JSON.parse(text));
              } catch {
                // not JSON: ignore
              }
            }
          } else if (opcode === 9) {
            // ping → pong (client frames are masked; a zero mask keeps the payload as is)
            const header = Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0]);
            sock.write(Buffer.concat([header, payload]));
          }
        }
      });
      sock.on("error", () => {});
      resolve();
    });
    req.on("response", (res) => reject(new Error(`events handshake refused: HTTP ${res.statusCode}`)));
    req.on("error", reject);
    req.end();
  });
  return {
    opened,
    events,
    next(predicate, timeoutMs = 60_000) {
      const found = events.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { predicate, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`no matching event in ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.type))}`));
          }
        }, timeoutMs).unref();
      });
    },
    close() {
      socket?.destroy();
    },
  };
}

/** A "daemon" that accepts connections and never answers. */
export async function startHangingServer() {
  const sockets = new Set();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted += 1;
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** How many connections were accepted so far. */
    accepted: () => accepted,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Runs the gatehouse CLI as the user of `dirs` (their HOME, the agent CLIs on PATH). */
export function gatehouse(dirs, args, { env = {}, timeoutMs = 60_000 } = {}) {
  const bin = requireGatehouseBin();
  const agentsBin = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "node_modules", ".bin");
  return run(bin, args, {
    cwd: dirs.work,
    timeoutMs,
    env: {
      PATH: `${agentsBin}:${process.env.PATH}`,
      HOME: dirs.home,
      TMPDIR: dirs.tmp,
      LANG: "C.UTF-8",
      CODEX_HOME: path.join(dirs.home, ".codex"),
      ...env,
    },
  });
}
