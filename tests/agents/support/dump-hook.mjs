// A plain hook for capturing payloads: writes its stdin to OUTDIR/<time>-<EVENT>.json and exits 0
// with no output (so the host goes on as if no hook were installed).
// Usage: node dump-hook.mjs EVENT OUTDIR

import fs from "node:fs";
import path from "node:path";

const [event, outDir] = process.argv.slice(2);
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
fs.mkdirSync(outDir, { recursive: true });
const stamp = process.hrtime.bigint().toString().padStart(20, "0");
fs.writeFileSync(path.join(outDir, `${stamp}-${event}.json`), Buffer.concat(chunks));
