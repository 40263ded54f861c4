// Test harness: a real `gatehouse serve` (GATEHOUSE_BIN) over a temporary data dir, with a policy
// written here so allow / reject / pause are deterministic; the approver's calls; and fake servers
// (hanging, garbage) plus a connection-dropping proxy for the fail-closed tests.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export const POLICY = `
default = "reject"

[[rules]]
id = "allow-safe"
effect = "allow"
tool = ["get_weather", "add", "Read", "mcp__files__read_file", "guarded_add"]

[[rules]]
id = "no-delete"
effect = "reject"
reason = "deleting files is not allowed here"
tool = ["delete_*", "mcp__files__delete_file"]

[[rules]]
id = "pause-send"
effect = "pause"
reason = "sending leaves the machine"
tool = ["send_*", "mcp__mail__*"]
`;

export function gatehouseBin() {
  return process.env.GATEHOUSE_BIN ?? new URL("../../../target/debug/gatehouse", import.meta.url).pathname;
}

export class Daemon {
  static async start({ deadlineMs = 120_000, socket = false } = {}) {
    const d = new Daemon();
    d.dir = mkdtempSync(join(tmpdir(), "gatehouse-sdk-ts-"));
    writeFileSync(join(d.dir, "policy.toml"), POLICY);
    const bin = gatehouseBin();
    const defaults = execFileSync(bin, ["config", "print-default"], { encoding: "utf8" });
    let config = `[approvals]\ndeadline_ms = ${deadlineMs}\n`;
    // Tests approve through the API, standing in for the person.
    if (defaults.includes("presence")) config += 'presence = "off"\n';
    writeFileSync(join(d.dir, "gatehouse.toml"), config);
    d.data = join(d.dir, "data");
    const args = ["serve", "--listen", "127.0.0.1:0", "--policy", join(d.dir, "policy.toml"), "--data-dir", d.data,
      "--config", join(d.dir, "gatehouse.toml")];
    if (socket) {
      d.socket = join(d.dir, "check.sock");
      args.push("--socket", d.socket);
    }
    const env = { ...process.env, HOME: d.dir, TMPDIR: d.dir, GATEHOUSE_LOG: "warn", GATEHOUSE_APPROVALS_PRESENCE: "off" };
    delete env.GATEHOUSE_DATA_DIR;
    d.proc = spawn(bin, args, { env, stdio: ["ignore", "pipe", "ignore"] });
    const lines = createInterface({ input: d.proc.stdout });
    const first = await new Promise((resolve, reject) => {
      lines.once("line", resolve);
      d.proc.once("exit", (code) => reject(new Error(`gatehouse serve exited with ${code}`)));
    });
    lines.on("line", () => {});
    const prefix = "gatehouse listening on ";
    if (!first.startsWith(prefix)) throw new Error(`unexpected first line: ${first}`);
    d.url = first.slice(prefix.length);
    d.port = Number(d.url.split(":").pop());
    d.agentToken = readFileSync(join(d.data, "agent.token"), "utf8").trim();
    d.approverToken = readFileSync(join(d.data, "approver.token"), "utf8").trim();
    return d;
  }

  async stop() {
    if (this.proc.exitCode === null) {
      const exited = new Promise((resolve) => this.proc.once("exit", resolve));
      this.proc.kill("SIGKILL");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  async approver(method, path, body) {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.approverToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  async actions(status = "all") {
    const { status: code, body } = await this.approver("GET", `/v1/actions?status=${status}&limit=500`);
    if (code !== 200) throw new Error(JSON.stringify(body));
    return body.actions;
  }

  async pendingFor({ tool, toolUseId, session } = {}) {
    for (const a of await this.actions("pending")) {
      if ((tool === undefined || a.tool === tool) && (toolUseId === undefined || a.tool_use_id === toolUseId)
        && (session === undefined || a.session_id === session)) return a;
    }
    return null;
  }

  async decide(action, decision, note, edited) {
    const body = { decision, action_hash: action.action_hash };
    if (note !== undefined) body.note = note;
    if (edited !== undefined) body.input = edited;
    const { status, body: answer } = await this.approver("POST", `/v1/actions/${action.action_id}/decision`, body);
    if (status !== 200) throw new Error(JSON.stringify(answer));
    return answer;
  }

  /** A person: waits (polling the ledger) for the paused action (by tool, tool use id, session), then decides it. */
  async decideWhenPending(decision, { tool, toolUseId, session, note, edited, timeoutMs = 30_000 } = {}) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const action = await this.pendingFor({ tool, toolUseId, session });
      if (action) return this.decide(action, decision, note, edited);
      await sleep(20);
    }
    throw new Error(`no paused ${tool} within ${timeoutMs} ms`);
  }
}

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A fake daemon on loopback: `hang` accepts and never answers; `garbage` answers 200 with a body that is no CheckResponse; `html` 200 text. */
export async function fakeServer(mode) {
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("error", () => {});
    if (mode === "hang") return;
    sock.once("data", () => {
      const body = mode === "garbage" ? '{"verdict":"maybe","action_id":7}' : "<html>allow</html>";
      sock.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}

/** A loopback proxy to the daemon that cuts the first `drops` connections `afterMs` after the request went through. */
export async function droppingProxy(targetPort, { drops = 1, afterMs = 300 } = {}) {
  let onCut;
  const state = { dropped: 0, cut: new Promise((resolve) => { onCut = resolve; }) };
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client); sockets.add(upstream);
    client.on("error", () => {}); upstream.on("error", () => {});
    const drop = state.dropped < drops;
    if (drop) state.dropped += 1;
    const mine = `127.0.0.1:${server.address().port}`;
    client.on("data", (data) => {
      // The daemon checks Host; name it, not the proxy.
      upstream.write(Buffer.from(data.toString("latin1").replace(`Host: ${mine}`, `Host: 127.0.0.1:${targetPort}`), "latin1"));
      if (drop) setTimeout(() => { client.destroy(); upstream.destroy(); onCut(); }, afterMs);
    });
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    state,
    stop: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}
