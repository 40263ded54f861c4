// Shared harness of the MCP proxy tests: a real `gatehouse serve` on a free loopback port with its
// own data directory and policy, the approver API, and paths of the real MCP servers installed
// by scripts/test-mcp.sh.
//
// Env: GATEHOUSE_BIN (default target/debug/gatehouse).

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const MCP_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const REPO_ROOT = resolve(MCP_DIR, '../..');
export const GATEHOUSE_BIN = resolve(REPO_ROOT, process.env.GATEHOUSE_BIN || 'target/debug/gatehouse');
export const NODE22 = join(MCP_DIR, 'node_modules/node/bin/node');
export const FS_SERVER = join(MCP_DIR, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
export const EVERYTHING_SERVER = join(MCP_DIR, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
export const VENV_PYTHON = join(MCP_DIR, '.venv/bin/python');
export const GIT_SERVER = join(MCP_DIR, '.venv/bin/mcp-server-git');

/** The policy of these tests: reads allowed, writes to `forbidden*` rejected, the rest paused. */
export const POLICY = `
default = "pause"

[[rules]]
id = "fs-reads"
effect = "allow"
tool = ["mcp__fs__read_text_file", "mcp__fs__read_file", "mcp__fs__list_directory", "mcp__fs__list_allowed_directories", "mcp__git__git_status", "mcp__git__git_log", "mcp__everything__echo", "mcp__everything__get-sum", "mcp__hostile__echo", "mcp__hostile__crash"]

[[rules]]
id = "no-forbidden-writes"
effect = "reject"
reason = "writes to forbidden files are not allowed"
tool = "mcp__fs__write_file"
[[rules.args]]
pointer = "/path"
regex = "forbidden"

[[rules]]
id = "first-sight-of-a-tool"
effect = "allow"
tool = "gatehouse.mcp.tool_definition"
[[rules.args]]
pointer = "/change"
equals = "first_sight"
`;

/** Rejects with a message naming `what` if `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts `gatehouse serve` over a fresh temp dir; resolves once it printed its URL. */
export async function startDaemon({ policy = POLICY } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-mcp-'));
  const dataDir = join(dir, 'data');
  const policyPath = join(dir, 'policy.toml');
  await writeFile(policyPath, policy);
  const proc = spawn(
    GATEHOUSE_BIN,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--policy', policyPath],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: dir, TMPDIR: dir, GATEHOUSE_APPROVALS_PRESENCE: 'off' },
    },
  );
  const output = [];
  createInterface({ input: proc.stderr }).on('line', (line) => output.push(line));
  const url = await withTimeout(new Promise((ok, fail) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = line.match(/gatehouse listening on (http:\/\/\S+)/);
      if (m) ok(m[1].replace(/\/$/, ''));
    });
    proc.once('exit', (code) => fail(new Error(`gatehouse serve exited (${code}):\n${output.join('\n')}`)));
  }), 30_000, 'gatehouse serve starting');
  const approverToken = (await readFile(join(dataDir, 'approver.token'), 'utf8')).trim();
  return { proc, dir, dataDir, url, approverToken, output };
}

export async function stopDaemon(d) {
  if (!d) return;
  if (d.proc.exitCode === null) {
    const exited = new Promise((ok) => d.proc.once('exit', ok));
    d.proc.kill('SIGTERM');
    await withTimeout(exited, 15_000, 'gatehouse serve stopping').catch(() => d.proc.kill('SIGKILL'));
  }
  await rm(d.dir, { recursive: true, force: true });
}

/** The proxy's command line in front of a stdio server. */
export function proxyArgs(d, name, serverCommand) {
  return ['mcp', 'stdio', '--name', name, '--url', d.url, '--data-dir', d.dataDir, '--', ...serverCommand];
}

/** The environment of a proxy started by a client: the test's own HOME and TMPDIR. */
export function proxyEnv(d) {
  return { PATH: process.env.PATH, HOME: d.dir, TMPDIR: d.dir };
}

async function api(d, method, path, body) {
  const res = await fetch(`${d.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${d.approverToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Actions of the ledger (newest first), optionally by status. */
export async function actions(d, status) {
  const q = status ? `?status=${status}&limit=500` : '?limit=500';
  return (await api(d, 'GET', `/v1/actions${q}`)).actions;
}

export async function action(d, id) {
  return api(d, 'GET', `/v1/actions/${encodeURIComponent(id)}`);
}

/** The action id in the proxy's progress message ("... (action ID)"). */
export function actionIdOf(progress) {
  const m = /\(action ([^)]+)\)/.exec(progress.message || '');
  if (!m) throw new Error(`no action id in progress ${JSON.stringify(progress)}`);
  return m[1];
}

/** A person's decision through the API. */
export async function decide(d, a, decision) {
  return api(d, 'POST', `/v1/actions/${encodeURIComponent(a.action_id)}/decision`, {
    decision,
    action_hash: a.action_hash,
  });
}

/** A free loopback port (bound and released: servers that cannot listen on port 0 need one). */
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** Starts server-everything over Streamable HTTP on a free port; resolves with its /mcp URL. */
export async function startEverythingHttp(node = process.execPath) {
  const port = await freePort();
  const proc = spawn(node, [EVERYTHING_SERVER, 'streamableHttp'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PORT: String(port) },
  });
  const logs = [];
  await withTimeout(new Promise((ok, fail) => {
    createInterface({ input: proc.stderr }).on('line', (line) => {
      logs.push(line);
      if (/listening on port/.test(line)) ok();
    });
    proc.once('exit', (code) => fail(new Error(`server-everything exited (${code}): ${logs.join('\n')}`)));
  }), 30_000, 'server-everything (streamableHttp) starting');
  return { proc, url: `http://127.0.0.1:${port}/mcp`, logs };
}

/** Starts `gatehouse mcp http` in front of `upstream`; resolves with its URL and client token. */
export async function startHttpProxy(d, upstream, { name = 'everything', extra = [] } = {}) {
  const proc = spawn(GATEHOUSE_BIN, ['mcp', 'http', '--upstream', upstream, '--listen', '127.0.0.1:0',
    '--name', name, '--url', d.url, '--data-dir', d.dataDir, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: d.dir, TMPDIR: d.dir },
  });
  const logs = [];
  createInterface({ input: proc.stderr }).on('line', (line) => logs.push(line));
  const url = await withTimeout(new Promise((ok, fail) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/);
      if (m) ok(m[1]);
    });
    proc.once('exit', (code) => fail(new Error(`gatehouse mcp http exited (${code}): ${logs.join('\n')}`)));
  }), 30_000, 'gatehouse mcp http starting');
  const token = (await readFile(join(d.dataDir, 'mcp-http.token'), 'utf8')).trim();
  return { proc, url, token, logs };
}

/** Stops a child process (SIGTERM, then SIGKILL after 5 s). */
export async function stopProcess(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((ok) => proc.once('exit', ok));
  proc.kill('SIGTERM');
  await withTimeout(exited, 5_000, 'a child exiting').catch(() => proc.kill('SIGKILL'));
}
