// Hostile traffic through `gatehouse mcp stdio`, spoken as raw JSON-RPC lines: malformed
// messages, huge messages, colliding ids, a notification-flooding server, a server that dies
// mid-call, a client that leaves mid-pause. The server (support/hostile-server.mjs, a test
// fixture: no real server misbehaves on demand) logs every line it receives, so each test can
// prove that nothing unallowed was forwarded; nothing may hang (every wait is bounded).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import {
  GATEHOUSE_BIN, MCP_DIR, action, actionIdOf, actions, decide, proxyArgs, proxyEnv, startDaemon, stopDaemon,
  withTimeout,
} from './support/harness.mjs';

const HOSTILE = join(MCP_DIR, 'support/hostile-server.mjs');
let d;
let counter = 0;

before(async () => { d = await startDaemon(); });
after(async () => stopDaemon(d));

/** A raw line-level client of the proxy in front of the hostile server. */
function open({ flood = 0, rugPull = false } = {}) {
  counter += 1;
  const log = join(d.dir, `hostile-${counter}.log`);
  const proc = spawn(GATEHOUSE_BIN, proxyArgs(d, 'hostile', [process.execPath, HOSTILE]), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...proxyEnv(d), HOSTILE_LOG: log, FLOOD: String(flood), RUGPULL: rugPull ? '1' : '0' },
  });
  const messages = [];
  const waiters = [];
  proc.stderr.resume();
  createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => {
    const msg = JSON.parse(line);
    messages.push(msg);
    for (const w of [...waiters]) {
      if (w.match(msg)) { waiters.splice(waiters.indexOf(w), 1); w.ok(msg); }
    }
  });
  const exited = new Promise((ok) => proc.once('exit', (code) => ok(code)));
  const c = {
    proc, messages, exited,
    send: (value) => proc.stdin.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`),
    next: (match, what) => {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return withTimeout(new Promise((ok) => waiters.push({ match, ok })), 20_000, what);
    },
    reply: (id) => c.next((m) => m.id === id && ('result' in m || 'error' in m), `the answer to ${id}`),
    received: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l)),
    close: async () => { proc.stdin.end(); return withTimeout(exited, 15_000, 'the proxy exiting'); },
  };
  return c;
}

async function initialized(c) {
  c.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  await c.reply('init');
  c.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
}

const call = (id, name, args = {}, meta) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });

test('malformed JSON-RPC is answered with errors and never forwarded', async () => {
  const c = open();
  await initialized(c);
  c.send('{"jsonrpc":"2.0","id":1,"method":"tools/call",');
  c.send('[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write","arguments":{}}}]');
  c.send('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","name":"write","arguments":{}}}');
  c.send('{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"write","arguments":"rm -rf /"}}');
  c.send('{"jsonrpc":"2.0","id":{"x":1},"method":"tools/call","params":{"name":"write","arguments":{}}}');
  c.send({ jsonrpc: '2.0', id: 'p', method: 'ping' });
  await c.reply('p');
  const errors = c.messages.filter((m) => m.error);
  assert.ok(errors.length >= 5, JSON.stringify(c.messages));
  const forwarded = (await c.received()).filter((m) => m.method === 'tools/call');
  assert.deepEqual(forwarded, []);
  await c.close();
});

test('a huge message is refused, and the session goes on', async () => {
  const c = open();
  await initialized(c);
  const huge = JSON.stringify(call(5, 'write', { content: 'x'.repeat(40 * 1024 * 1024) }));
  c.send(huge);
  const refused = await c.next((m) => m.error && /limit/.test(m.error.message), 'the refusal of the huge message');
  assert.equal(refused.error.code, -32600);
  c.send(call(6, 'echo', { message: 'still alive' }));
  assert.equal((await c.reply(6)).result.content[0].text, 'still alive');
  assert.ok(!(await c.received()).some((m) => m.id === 5));
  await c.close();
});

test('a colliding id is refused while the first call is in flight; neither paused call is forwarded', async () => {
  const c = open();
  await initialized(c);
  c.send(call(7, 'write', { path: 'a' }, { progressToken: 'p7' }));
  const progress = await c.next((m) => m.method === 'notifications/progress', 'the pause');
  c.send(call(7, 'echo', { message: 'same id' }));
  const refused = await c.reply(7);
  assert.equal(refused.error.code, -32600);
  assert.match(refused.error.message, /already in use/);
  assert.ok(!(await c.received()).some((m) => m.method === 'tools/call'));
  // The client leaves while paused: the action is withdrawn, never forwarded.
  assert.equal(await c.close(), 0);
  const withdrawn = await action(d, actionIdOf(progress.params));
  assert.equal(withdrawn.verdict, 'reject');
  assert.ok(!(await c.received()).some((m) => m.method === 'tools/call'));
});

test('a server that floods notifications does not starve calls', async () => {
  const c = open({ flood: 50_000 });
  await initialized(c);
  c.send(call(8, 'echo', { message: 'through the flood' }));
  assert.equal((await c.reply(8)).result.content[0].text, 'through the flood');
  await c.close();
});

test('a server that dies mid-call: the client gets an error and the proxy exits', async () => {
  const c = open();
  await initialized(c);
  c.send(call(9, 'crash'));
  const answer = await c.reply(9);
  assert.ok(answer.error, JSON.stringify(answer));
  assert.equal(await withTimeout(c.exited, 15_000, 'the proxy exiting after its server'), 3);
});

test('daemon down: the call is not forwarded, the client is told why', async () => {
  const c = open();
  await initialized(c);
  // A proxy whose daemon URL points nowhere.
  const dead = spawn(GATEHOUSE_BIN, ['mcp', 'stdio', '--name', 'hostile', '--url', 'http://127.0.0.1:9', '--data-dir', d.dataDir, '--', process.execPath, HOSTILE], {
    stdio: ['pipe', 'pipe', 'ignore'], env: { ...proxyEnv(d), HOSTILE_LOG: join(d.dir, 'dead.log') },
  });
  const lines = createInterface({ input: dead.stdout });
  const answer = withTimeout(new Promise((ok) => lines.on('line', (l) => { const m = JSON.parse(l); if (m.id === 10) ok(m); })), 20_000, 'the answer');
  dead.stdin.write(`${JSON.stringify(call(10, 'echo', { message: 'x' }))}\n`);
  const got = await answer;
  assert.equal(got.result.isError, true);
  assert.match(got.result.content[0].text, /could not check this tool call/);
  dead.stdin.end();
  await withTimeout(new Promise((ok) => dead.once('exit', ok)), 15_000, 'exit');
  const received = (await readFile(join(d.dir, 'dead.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  assert.ok(!received.some((l) => l.includes('tools/call')));
  await c.close();
});

test('a rug pull: a changed tool description is recorded with its diff, and calls wait until a person accepts it', async () => {
  const c = open({ rugPull: true });
  await initialized(c);
  c.send({ jsonrpc: '2.0', id: 'l1', method: 'tools/list' });
  await c.reply('l1');
  c.send(call(20, 'echo', { message: 'before' }));
  assert.equal((await c.reply(20)).result.content[0].text, 'before');
  c.send({ jsonrpc: '2.0', id: 'l2', method: 'tools/list' });
  await c.reply('l2');
  // The changed definition is in the ledger, paused, with the diff as its input.
  let changed;
  for (let i = 0; i < 200 && !changed; i += 1) {
    changed = (await actions(d, 'pending')).find((a) => a.tool === 'gatehouse.mcp.tool_definition' && a.input.tool === 'echo');
    if (!changed) await new Promise((ok) => setTimeout(ok, 50));
  }
  assert.ok(changed, 'the changed definition is paused for a person');
  assert.equal(changed.input.change, 'changed');
  assert.match(changed.input.diff[0], /^description: .*id_rsa/);
  const firstSight = (await actions(d)).filter((a) => a.tool === 'gatehouse.mcp.tool_definition' && a.input.change === 'first_sight');
  assert.ok(firstSight.length >= 3, 'first sight of every tool was recorded');
  // Until accepted, a call to the tool waits in the proxy (before its check), even though the
  // policy allows it; a progress notification says whose acceptance it waits for.
  c.send({ ...call(21, 'echo', { message: 'after' }), params: { name: 'echo', arguments: { message: 'after' }, _meta: { progressToken: 'p21' } } });
  const progress = await c.next((m) => m.method === 'notifications/progress' && m.params.progressToken === 'p21', 'the held call\'s progress');
  assert.match(progress.params.message, /definition of tool `echo` changed/);
  assert.ok(!c.messages.some((m) => m.id === 21), 'the held call was answered before the acceptance');
  assert.ok(!(await c.received()).some((m) => m.id === 21));
  // A person accepts it: the held call is checked and goes through.
  await decide(d, changed, 'approve');
  assert.equal((await c.reply(21)).result.content[0].text, 'after');
  await c.close();
});
