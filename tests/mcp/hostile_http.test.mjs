// Hostile traffic through `gatehouse mcp http`, spoken as raw HTTP: malformed JSON-RPC, a huge
// message, colliding ids, a server that floods notifications, a server that dies mid-call, a
// client that disconnects mid-pause. The server (support/hostile-http-server.mjs, a test
// fixture) logs every body it receives, so each test proves that nothing unallowed was
// forwarded; every wait is bounded, and the proxy must still serve afterwards.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import {
  MCP_DIR, POLICY, action, actions, decide, freePort, startDaemon, startHttpProxy, stopDaemon, stopProcess,
  withTimeout,
} from './support/harness.mjs';

const SERVER = join(MCP_DIR, 'support/hostile-http-server.mjs');
let d;
let server;
let proxy;
let log;
let session;

before(async () => {
  d = await startDaemon({ policy: `${POLICY}
[[rules]]
id = "flood-allowed"
effect = "allow"
tool = "mcp__hostile__flood"
` });
  log = join(d.dir, 'hostile-http.log');
  const port = await freePort();
  server = spawn(process.execPath, [SERVER, String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOSTILE_LOG: log } });
  await withTimeout(new Promise((ok) => createInterface({ input: server.stderr }).on('line', (l) => { if (/listening/.test(l)) ok(); })), 15_000, 'the hostile server');
  proxy = await startHttpProxy(d, `http://127.0.0.1:${port}/mcp`, { name: 'hostile' });
  const res = await post({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-http', version: '1' } } });
  session = res.headers.get('mcp-session-id');
  assert.equal(session, 'hostile-session');
  await res.text();
});
after(async () => {
  await stopProcess(proxy?.proc);
  await stopProcess(server);
  await stopDaemon(d);
});

function post(body, { signal, headers = {} } = {}) {
  return fetch(proxy.url, {
    method: 'POST',
    signal,
    headers: {
      authorization: `Bearer ${proxy.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      ...(session ? { 'mcp-session-id': session } : {}), ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const received = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);

async function pendingWrite(marker) {
  for (let i = 0; i < 400; i += 1) {
    const found = (await actions(d, 'pending')).find((a) => a.tool === 'mcp__hostile__write' && a.input.marker === marker);
    if (found) return found;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`no paused write ${marker}`);
}

async function stillServes() {
  const res = await post(call(`alive-${Math.random()}`, 'echo', { message: 'alive' }));
  assert.equal(res.status, 200);
  assert.equal((await res.json()).result.content[0].text, 'alive');
}

test('malformed JSON-RPC is refused with 400 and never forwarded', async () => {
  const before = (await received()).length;
  for (const bad of ['not json', '[{"jsonrpc":"2.0","id":1,"method":"tools/call"}]',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"write","arguments":{}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write","arguments":[1]}}']) {
    const res = await post(bad);
    assert.equal(res.status, 400, bad);
    await res.text();
  }
  assert.equal((await received()).length, before);
  await stillServes();
});

test('a message over 32 MiB is refused (413) and never forwarded', async () => {
  const before = (await received()).length;
  const huge = JSON.stringify(call('huge', 'write', { marker: 'x'.repeat(33 * 1024 * 1024) }));
  const res = await post(huge);
  assert.equal(res.status, 413);
  await res.text();
  assert.equal((await received()).length, before);
  await stillServes();
});

test('a colliding id is refused while the first call is paused; neither runs unapproved', async () => {
  const first = post(call(42, 'write', { marker: 'collide-1' }));
  const paused = await pendingWrite('collide-1');
  const second = await post(call(42, 'write', { marker: 'collide-2' }));
  assert.equal(second.status, 409);
  await second.text();
  await decide(d, paused, 'deny');
  const answer = await (await withTimeout(first, 20_000, 'the denied call')).json();
  assert.equal(answer.result.isError, true);
  assert.ok(!(await received()).some((l) => l.includes('collide')), 'a collided or denied call was forwarded');
});

test('a server that floods notifications: all pass, then the result; the proxy keeps serving', async () => {
  const res = await post(call('flood', 'flood'));
  const body = await withTimeout(res.text(), 30_000, 'the flooded answer');
  assert.equal((body.match(/notifications\/message/g) || []).length, 5000);
  assert.match(body, /flooded/);
  await stillServes();
});

test('a server that dies mid-call: the client gets an error, nothing hangs, the proxy keeps serving', async () => {
  const res = await withTimeout(post(call('crash', 'crash')), 20_000, 'the crashed call');
  if (res.status === 200) {
    await assert.rejects(withTimeout(res.text(), 20_000, 'the cut body').then((t) => { if (!t) throw new Error('empty'); return JSON.parse(t); }));
  } else {
    assert.equal(res.status, 502);
    await res.text();
  }
  await stillServes();
});

test('a client that disconnects mid-pause: the action is withdrawn and never forwarded', async () => {
  const aborter = new AbortController();
  const pending = post(call('leaving', 'write', { marker: 'leaving' }), { signal: aborter.signal });
  const paused = await pendingWrite('leaving');
  aborter.abort();
  await assert.rejects(pending);
  let view;
  for (let i = 0; i < 200; i += 1) {
    view = await action(d, paused.action_id);
    if (view.verdict !== 'pending') break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  assert.notEqual(view.verdict, 'pending', 'the abandoned call is still pending');
  assert.equal(view.verdict, 'reject');
  assert.equal(view.decision.decided_by, 'withdrawn');
  // A late approval cannot land: the withdrawal was its one decision.
  await assert.rejects(decide(d, paused, 'approve'), /409/);
  assert.ok(!(await received()).some((l) => l.includes('leaving')));
  await stillServes();
});

test('a client that disconnects mid-pause of an SSE (progress) answer withdraws it too', async () => {
  const aborter = new AbortController();
  const res = await post({ jsonrpc: '2.0', id: 'sse-leave', method: 'tools/call', params: { name: 'write', arguments: { marker: 'sse-leave' }, _meta: { progressToken: 'p1' } } }, { signal: aborter.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const reader = res.body.getReader();
  const { value } = await withTimeout(reader.read(), 20_000, 'the first progress event');
  const first = new TextDecoder().decode(value);
  assert.match(first, /notifications\/progress/);
  const paused = await pendingWrite('sse-leave');
  assert.ok(first.includes(paused.action_id), first);
  aborter.abort();
  let view;
  for (let i = 0; i < 200; i += 1) {
    view = await action(d, paused.action_id);
    if (view.verdict !== 'pending') break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  assert.equal(view.verdict, 'reject');
  assert.equal(view.decision.decided_by, 'withdrawn');
  assert.ok(!(await received()).some((l) => l.includes('sse-leave')));
});
