// The Streamable HTTP proxy with real parts: server-everything in streamableHttp mode, the
// TypeScript SDK's StreamableHTTPClientTransport as the client, `gatehouse mcp http` between,
// a real daemon deciding. Also the proxy's own guards: token, Host, Origin.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  POLICY, action, actionIdOf, actions, decide, startDaemon, startEverythingHttp, startHttpProxy,
  stopDaemon, stopProcess, withTimeout,
} from './support/harness.mjs';

const HTTP_POLICY = `${POLICY}
[[rules]]
id = "no-env-dumps"
effect = "reject"
reason = "dumping the environment exposes secrets"
tool = "mcp__everything__get-env"
`;

let d;
let upstream;
let proxy;

before(async () => {
  d = await startDaemon({ policy: HTTP_POLICY });
  upstream = await startEverythingHttp();
  proxy = await startHttpProxy(d, upstream.url, { extra: ['--upstream-header', 'X-Upstream-Secret: s3cret-upstream'] });
});
after(async () => {
  await stopProcess(proxy?.proc);
  await stopProcess(upstream?.proc);
  await stopDaemon(d);
});

async function connect() {
  const client = new Client({ name: 'ts-sdk-http', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(proxy.url), {
    requestInit: { headers: { Authorization: `Bearer ${proxy.token}` } },
  });
  await withTimeout(client.connect(transport), 30_000, 'connecting through gatehouse mcp http');
  return client;
}

const text = (result) => result.content.map((c) => c.text ?? '').join('\n');
const init = {
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

describe('gatehouse mcp http in front of server-everything (TypeScript SDK client)', () => {
  let client;
  before(async () => { client = await connect(); });
  after(async () => client?.close());

  test('an allowed call goes through and its answer comes back', async () => {
    const result = await client.callTool({ name: 'echo', arguments: { message: 'over http' } });
    assert.match(text(result), /over http/);
    const recorded = (await actions(d)).find((a) => a.tool === 'mcp__everything__echo' && a.input.message === 'over http');
    assert.equal(recorded.verdict, 'allow');
    assert.equal(recorded.agent, 'ts-sdk-http');
  });

  test('a rejected call never reaches the server and says why', async () => {
    const result = await client.callTool({ name: 'get-env', arguments: {} });
    assert.equal(result.isError, true);
    assert.match(text(result), /dumping the environment exposes secrets/);
    assert.doesNotMatch(text(result), /PATH=/);
  });

  test('a paused call completes after approval', async () => {
    const call = client.callTool({ name: 'get-tiny-image', arguments: {} }, undefined, { timeout: 60_000 });
    let pending;
    for (let i = 0; i < 200 && !pending; i += 1) {
      pending = (await actions(d, 'pending')).find((a) => a.tool === 'mcp__everything__get-tiny-image');
      if (!pending) await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.ok(pending, 'the call is paused');
    await decide(d, pending, 'approve');
    const result = await withTimeout(call, 30_000, 'the approved call');
    assert.notEqual(result.isError, true);
    assert.ok(result.content.some((c) => c.type === 'image'));
  });

  test('the upstream credentials are never shown to the client', async () => {
    const res = await fetch(proxy.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${proxy.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(init),
    });
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.doesNotMatch(body + JSON.stringify([...res.headers]), /s3cret-upstream/);
  });
});

describe('the proxy\'s guards', () => {
  const post = (headers, url = proxy.url) => fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(init),
  });

  test('no token: 401, nothing forwarded', async () => {
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: 'Bearer wrong' })).status, 401);
  });

  test('the token in the query works for clients that cannot set headers', async () => {
    assert.equal((await post({}, `${proxy.url}?gatehouse_token=${proxy.token}`)).status, 200);
  });

  test('a foreign Origin is refused with 403', async () => {
    const res = await post({ authorization: `Bearer ${proxy.token}`, origin: 'http://evil.example.com' });
    assert.equal(res.status, 403);
  });

  test('malformed JSON-RPC is refused with 400 and never forwarded', async () => {
    const res = await fetch(proxy.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${proxy.token}`, 'content-type': 'application/json' },
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"get-env"}}',
    });
    assert.equal(res.status, 400);
  });

  test('an Mcp-Name header that names another tool is refused', async () => {
    const res = await fetch(proxy.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${proxy.token}`, 'content-type': 'application/json',
        accept: 'application/json, text/event-stream', 'mcp-method': 'tools/call', 'mcp-name': 'echo',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'get-env', arguments: {} } }),
    });
    assert.equal(res.status, 400);
  });
});
