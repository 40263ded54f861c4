// The official MCP conformance suite (@modelcontextprotocol/conformance, server mode, on the
// Node 22 binary from the `node` npm package) against server-everything directly and through
// `gatehouse mcp http`: every check that passes directly must pass through the proxy, and the
// proxy must pass every check of `dns-rebinding-protection` (which server-everything alone fails).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  MCP_DIR, NODE22, POLICY, startDaemon, startEverythingHttp, startHttpProxy, stopDaemon, stopProcess,
  withTimeout,
} from './support/harness.mjs';

// Every tool of server-everything is allowed here: the suite measures transparency, not policy.
const CONFORMANCE_POLICY = `${POLICY}
[[rules]]
id = "everything-allowed"
effect = "allow"
tool = "mcp__everything__*"
`;

let d;
let upstream;
let proxy;

before(async () => {
  d = await startDaemon({ policy: CONFORMANCE_POLICY });
  upstream = await startEverythingHttp();
  proxy = await startHttpProxy(d, upstream.url);
});
after(async () => {
  await stopProcess(proxy?.proc);
  await stopProcess(upstream?.proc);
  await stopDaemon(d);
});

/** Runs the suite against `url`; resolves with { "scenario/check": "SUCCESS" | ... }. */
async function runSuite(url, label) {
  const out = await mkdtemp(join(d.dir, `conformance-${label}-`));
  const proc = spawn(NODE22, [join(MCP_DIR, 'node_modules/.bin/conformance'), 'server', '--url', url, '-o', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: d.dir, TMPDIR: d.dir },
  });
  let log = '';
  proc.stdout.on('data', (b) => { log += b; });
  proc.stderr.on('data', (b) => { log += b; });
  await withTimeout(new Promise((ok) => proc.once('exit', ok)), 300_000, `conformance suite (${label})`);
  const results = {};
  for (const dir of await readdir(out)) {
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    const checks = JSON.parse(await readFile(join(out, dir, 'checks.json'), 'utf8'));
    for (const check of checks) results[`${scenario}/${check.id}`] = check.status;
  }
  const summary = log.split('\n').filter((l) => /Total:/.test(l)).join(' ');
  return { results, summary };
}

test('conformance: everything that passes directly passes through the proxy, and dns-rebinding-protection passes', async () => {
  const direct = await runSuite(upstream.url, 'direct');
  const through = await runSuite(`${proxy.url}?gatehouse_token=${proxy.token}`, 'proxy');
  const passing = (r) => Object.keys(r).filter((k) => r[k] === 'SUCCESS');
  console.log(`conformance direct: ${direct.summary} (${passing(direct.results).length} checks passed)`);
  console.log(`conformance through gatehouse mcp http: ${through.summary} (${passing(through.results).length} checks passed)`);
  assert.ok(passing(direct.results).length > 0, 'the suite ran');
  const lost = passing(direct.results).filter((k) => through.results[k] !== 'SUCCESS');
  assert.deepEqual(lost, [], 'checks that pass directly but not through the proxy');
  const dns = Object.keys(through.results).filter((k) => k.startsWith('dns-rebinding-protection/'));
  assert.ok(dns.length >= 2, `dns-rebinding-protection checks ran: ${dns}`);
  for (const k of dns) assert.equal(through.results[k], 'SUCCESS', k);
});
