// Benchmark: the TypeScript SDK's `check()` against a raw HTTP round trip to the same real daemon,
// in the same run, interleaved so both see the same machine: `node:http` with a keep-alive agent
// (what the SDK uses) and `fetch` as a second baseline. Prints p50/p90 and the overhead.
//
//   GATEHOUSE_BIN=target/debug/gatehouse node bench/bench-check.mjs [--quick]
// (run from a directory where `@gatehouse/sdk` resolves, as scripts/test-sdks.sh does)

import http from "node:http";
import { randomUUID } from "node:crypto";

import { Gatehouse } from "@gatehouse/sdk";

import { Daemon } from "../test/daemon.mjs";

const TARGET_US = 50;
const quick = process.argv.includes("--quick");
const n = quick ? 300 : 3000;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const p90 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]; };

/**
 * The overhead is p50(sdk) - p50(raw), the calls interleaved; the median of the paired differences
 * is printed beside it: when the two disagree by much, the machine was too noisy for the figure.
 */
function report(name, raw, sdk) {
  const overhead = median(sdk) - median(raw);
  const paired = median(sdk.map((s, i) => s - raw[i]));
  const ok = overhead <= TARGET_US;
  const signed = (x) => `${x >= 0 ? "+" : ""}${x.toFixed(0)}`;
  console.log(`${name}: raw p50 ${median(raw).toFixed(0)} µs p90 ${p90(raw).toFixed(0)} µs | sdk p50 ${median(sdk).toFixed(0)} µs `
    + `p90 ${p90(sdk).toFixed(0)} µs | overhead p50 ${signed(overhead)} µs (ratio ${(median(sdk) / median(raw)).toFixed(3)}; `
    + `median of paired differences ${signed(paired)} µs) [target <= +${TARGET_US} µs: ${ok ? "ok" : "OVER"}]`);
  return ok;
}

const daemon = await Daemon.start();
try {
  const agent = new http.Agent({ keepAlive: true });
  const body = () => JSON.stringify({ tool: "get_weather", input: { city: "Lisbon" }, session_id: "bench-raw", tool_use_id: randomUUID(), wait_ms: 25000 });
  const headers = { authorization: `Bearer ${daemon.agentToken}`, "content-type": "application/json" };
  const rawHttp = () => new Promise((resolve, reject) => {
    const payload = body();
    const req = http.request({ host: "127.0.0.1", port: daemon.port, path: "/v1/check", method: "POST", agent,
      headers: { ...headers, "content-length": Buffer.byteLength(payload) } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => { const a = JSON.parse(Buffer.concat(chunks).toString()); a.verdict === "allow" ? resolve() : reject(new Error(a.verdict)); });
    });
    req.on("error", reject);
    req.end(payload);
  });
  const rawFetch = async () => {
    const res = await fetch(`${daemon.url}/v1/check`, { method: "POST", headers, body: body() });
    if ((await res.json()).verdict !== "allow") throw new Error("not allowed");
  };
  const gate = new Gatehouse({ url: daemon.url, token: daemon.agentToken, env: {}, sessionId: "bench-sdk" });
  const sdk = async () => { if (!(await gate.check("get_weather", { city: "Lisbon" })).allowed) throw new Error("not allowed"); };

  const time = async (fn) => { const s = process.hrtime.bigint(); await fn(); return Number(process.hrtime.bigint() - s) / 1000; };
  for (let i = 0; i < 100; i++) { await rawHttp(); await rawFetch(); await sdk(); }
  const raw = [], viaFetch = [], sdkTimes = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) { raw.push(await time(rawHttp)); sdkTimes.push(await time(sdk)); viaFetch.push(await time(rawFetch)); }
    else { sdkTimes.push(await time(sdk)); raw.push(await time(rawHttp)); viaFetch.push(await time(rawFetch)); }
  }
  const ok = report(`typescript Gatehouse.check() vs node:http keep-alive (n=${n})`, raw, sdkTimes);
  report(`typescript Gatehouse.check() vs fetch (n=${n}, reference)`, viaFetch, sdkTimes);
  console.log(`typescript sdk bench: ${ok ? "ok" : "over target"}`);
  gate.close();
  agent.destroy();
} finally {
  await daemon.stop();
}
