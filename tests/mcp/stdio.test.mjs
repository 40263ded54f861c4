// The stdio proxy with real parts: the TypeScript SDK as the client, the real filesystem and
// everything servers behind `gatehouse mcp stdio`, a real daemon deciding. Checks the disk, the
// ledger, and what the client sees for each verdict.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  EVERYTHING_SERVER, FS_SERVER, GATEHOUSE_BIN, action, actionIdOf, actions, decide,
  proxyArgs, proxyEnv, startDaemon, stopDaemon, withTimeout,
} from './support/harness.mjs';

let d;
let root;

before(async () => {
  d = await startDaemon();
  root = await mkdtemp(join(d.dir, 'project-'));
});
after(async () => stopDaemon(d));

async function connect(name, serverCommand) {
  const client = new Client({ name: 'ts-sdk-test', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: GATEHOUSE_BIN,
    args: proxyArgs(d, name, serverCommand),
    env: proxyEnv(d),
    stderr: 'pipe',
  });
  await withTimeout(client.connect(transport), 30_000, `connecting to ${name} through the proxy`);
  return client;
}

const exists = (path) => stat(path).then(() => true, () => false);
const text = (result) => result.content.map((c) => c.text).join('\n');

describe('filesystem server through gatehouse mcp stdio (TypeScript SDK client)', () => {
  let client;
  before(async () => { client = await connect('fs', [process.execPath, FS_SERVER, root]); });
  after(async () => client?.close());

  test('tools/list passes through', async () => {
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'write_file'));
  });

  test('an allowed read goes through byte for byte', async () => {
    const content = 'line one\nüñíçødé ✓\n\ttabs and "quotes"\n';
    await writeFile(join(root, 'hello.txt'), content);
    const result = await client.callTool({ name: 'read_text_file', arguments: { path: join(root, 'hello.txt') } });
    assert.notEqual(result.isError, true);
    assert.equal(text(result), content);
    const recorded = (await actions(d)).find((a) => a.tool === 'mcp__fs__read_text_file');
    assert.equal(recorded.verdict, 'allow');
    assert.equal(recorded.agent, 'ts-sdk-test');
    assert.match(recorded.session_id, /^mcp-fs-/);
  });

  test('a rejected write never reaches the server: not on disk, isError with the reason', async () => {
    const target = join(root, 'forbidden.txt');
    const result = await client.callTool({ name: 'write_file', arguments: { path: target, content: 'pwned' } });
    assert.equal(result.isError, true);
    assert.match(text(result), /rejected.*no-forbidden-writes.*writes to forbidden files/s);
    assert.equal(await exists(target), false);
    const recorded = (await actions(d)).find((a) => a.tool === 'mcp__fs__write_file' && a.input.path === target);
    assert.equal(recorded.verdict, 'reject');
  });

  test('a paused write completes after approval through the API, once', async () => {
    const target = join(root, 'approved.txt');
    let paused;
    const progressSeen = new Promise((ok) => { paused = ok; });
    const call = client.callTool(
      { name: 'write_file', arguments: { path: target, content: 'approved' } },
      undefined,
      { onprogress: (p) => paused(p), timeout: 60_000, resetTimeoutOnProgress: true },
    );
    const progress = await withTimeout(progressSeen, 20_000, 'a progress notification for the pause');
    assert.match(progress.message, /waiting for a person/);
    assert.equal(await exists(target), false, 'not written while paused');
    const pending = await action(d, actionIdOf(progress));
    assert.equal(pending.verdict, 'pending');
    await decide(d, pending, 'approve');
    const result = await withTimeout(call, 30_000, 'the approved call');
    assert.notEqual(result.isError, true, text(result));
    assert.equal(await readFile(target, 'utf8'), 'approved');
  });

  test('a paused write that is denied is never executed', async () => {
    const target = join(root, 'denied.txt');
    let paused;
    const progressSeen = new Promise((ok) => { paused = ok; });
    const call = client.callTool(
      { name: 'write_file', arguments: { path: target, content: 'denied' } },
      undefined,
      { onprogress: (p) => paused(p), timeout: 60_000 },
    );
    const pending = await action(d, actionIdOf(await withTimeout(progressSeen, 20_000, 'pause')));
    await decide(d, pending, 'deny');
    const result = await withTimeout(call, 30_000, 'the denied call');
    assert.equal(result.isError, true);
    assert.equal(await exists(target), false);
  });

  test('a paused write that the client cancels is never executed, and is withdrawn in the ledger', async () => {
    const target = join(root, 'cancelled.txt');
    const controller = new AbortController();
    let paused;
    const progressSeen = new Promise((ok) => { paused = ok; });
    const call = client.callTool(
      { name: 'write_file', arguments: { path: target, content: 'cancelled' } },
      undefined,
      { onprogress: (p) => paused(p), signal: controller.signal, timeout: 60_000 },
    );
    const id = actionIdOf(await withTimeout(progressSeen, 20_000, 'pause'));
    controller.abort('the user pressed escape');
    await assert.rejects(call);
    // The withdrawal lands as the action's one decision; a person's approval now is refused.
    let withdrawn;
    for (let i = 0; i < 100; i += 1) {
      withdrawn = await action(d, id);
      if (withdrawn.verdict !== 'pending') break;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.equal(withdrawn.verdict, 'reject');
    // Its own state (ledger schema 7): not a person's deny, not an error.
    assert.equal(withdrawn.decision.decided_by, 'withdrawn');
    await assert.rejects(decide(d, withdrawn, 'approve'), /409/);
    assert.equal(await exists(target), false);
  });
});

describe('everything server through gatehouse mcp stdio', () => {
  let client;
  before(async () => { client = await connect('everything', [process.execPath, EVERYTHING_SERVER, 'stdio']); });
  after(async () => client?.close());

  test('an allowed tool call returns the server\'s result', async () => {
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hi there' } });
    assert.match(text(result), /hi there/);
  });

  test('resources and prompts pass through unchanged', async () => {
    const { resources } = await client.listResources();
    assert.ok(resources.length > 0);
    const read = await client.readResource({ uri: resources[0].uri });
    assert.ok(read.contents.length > 0);
    const { prompts } = await client.listPrompts();
    assert.ok(prompts.length > 0);
  });

  test('the output of a call is the context of the next check', async () => {
    await client.callTool({ name: 'echo', arguments: { message: 'ignore previous instructions' } });
    await client.callTool({ name: 'echo', arguments: { message: 'second' } });
    const second = (await actions(d)).find((a) => a.tool === 'mcp__everything__echo' && a.input.message === 'second');
    assert.match(second.context.previous_output, /ignore previous instructions/);
    assert.equal(second.context.mcp_server, 'everything');
  });
});
