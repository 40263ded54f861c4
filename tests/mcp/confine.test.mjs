// `gatehouse mcp stdio --confine PROFILE`: the real filesystem server runs inside the `build`
// sandbox profile through the same launcher as `gatehouse sandbox run`. The policy ALLOWS every
// read, and the server itself is told the fake secret's directory is allowed: a read inside the
// project still works, the read of the fake secret fails at the kernel and the sandbox reports
// it on the proxy's stderr. Fail closed: where the kernel cannot confine (simulated with
// GATEHOUSE_SANDBOX_UNSUPPORTED, which can only take confinement away), the proxy refuses to
// start and the server never runs.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  FS_SERVER, GATEHOUSE_BIN, MCP_DIR, actions, proxyEnv, startDaemon, stopDaemon, withTimeout,
} from './support/harness.mjs';

const SECRET = 'FAKE-PRIVATE-KEY-do-not-leak';

let d;
let root;
let sshDir;
let client;
const stderr = [];

const text = (result) => (result.content || []).map((c) => c.text).join('\n');
const exists = (path) => stat(path).then(() => true, () => false);

/** `gatehouse mcp stdio … --confine build -- <server>`, the project being tests/mcp. */
function confinedArgs(serverCommand, profile = 'build') {
  return ['mcp', 'stdio', '--name', 'fs', '--url', d.url, '--data-dir', d.dataDir,
    '--confine', profile, '--', ...serverCommand];
}

before(async () => {
  d = await startDaemon();
  // The project is tests/mcp (it holds the server's code); the served root is inside it.
  root = await mkdtemp(join(MCP_DIR, '.confine-root-'));
  // The fake secret is where a real one would be: ~/.ssh of the proxy's HOME (d.dir).
  sshDir = join(d.dir, '.ssh');
  await mkdir(sshDir, { recursive: true });
  await writeFile(join(sshDir, 'id_rsa'), `${SECRET}\n`);
  await writeFile(join(root, 'inside.txt'), 'inside the project\n');

  client = new Client({ name: 'confine-test', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: GATEHOUSE_BIN,
    args: confinedArgs([process.execPath, FS_SERVER, root, sshDir]),
    env: proxyEnv(d),
    cwd: MCP_DIR,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk) => stderr.push(String(chunk)));
  await withTimeout(client.connect(transport), 30_000, 'connecting to the confined filesystem server');
});

after(async () => {
  await client?.close().catch(() => {});
  if (root) await rm(root, { recursive: true, force: true });
  await stopDaemon(d);
});

test('a read inside the project works through the confined server', async () => {
  const result = await client.callTool({ name: 'read_text_file', arguments: { path: join(root, 'inside.txt') } });
  assert.notEqual(result.isError, true, text(result));
  assert.equal(text(result), 'inside the project\n');
});

test('the policy allows the read of the fake secret, the kernel refuses it, and the sandbox reports it', async () => {
  const secret = join(sshDir, 'id_rsa');
  const result = await client.callTool({ name: 'read_text_file', arguments: { path: secret } });
  assert.ok(!text(result).includes(SECRET), `the secret leaked: ${text(result)}`);
  assert.equal(result.isError, true, text(result));
  const recorded = (await actions(d)).find((a) => a.tool === 'mcp__fs__read_text_file' && a.input.path === secret);
  assert.equal(recorded?.verdict, 'allow', 'the rules allowed it: only the sandbox stopped it');
  // The denial line arrives on the proxy's stderr (the launcher's supervisor prints it).
  const deadline = Date.now() + 10_000;
  const reported = () => stderr.join('').split('\n')
    .some((l) => l.startsWith('gatehouse sandbox: denied read') && l.includes('.ssh'));
  while (!reported() && Date.now() < deadline) {
    await new Promise((ok) => { setTimeout(ok, 50); });
  }
  assert.ok(reported(), `no denial reported on stderr:\n${stderr.join('')}`);
});

test('--confine fails closed: no kernel support or an unknown profile, and the server never starts', async () => {
  const marker = join(d.dir, 'server-ran');
  const server = ['/bin/sh', '-c', `touch '${marker}'`];
  const unsupported = spawnSync(GATEHOUSE_BIN, confinedArgs(server), {
    env: { ...proxyEnv(d), GATEHOUSE_SANDBOX_UNSUPPORTED: 'test' }, cwd: MCP_DIR, input: '', encoding: 'utf8', timeout: 30_000,
  });
  assert.notEqual(unsupported.status, 0, unsupported.stderr);
  assert.match(unsupported.stderr, /cannot confine the MCP server/);
  const unknown = spawnSync(GATEHOUSE_BIN, confinedArgs(server, 'no-such-profile'), {
    env: proxyEnv(d), cwd: MCP_DIR, input: '', encoding: 'utf8', timeout: 30_000,
  });
  assert.notEqual(unknown.status, 0, unknown.stderr);
  assert.match(unknown.stderr, /unknown profile/);
  assert.equal(await exists(marker), false, 'the server ran unconfined');
});
