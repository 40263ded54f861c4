// The benchmark's peer: the original daemon's /v1/check fast path on its own stack (Bun + Hono +
// bun:sqlite), so gatehouse-bench can measure it with the same load generator as the Rust daemon.
//
// What it does per request, as the original did: parse the check JSON, evaluate the rules (the
// same ones as bench/policy.toml, first match wins), insert one row into the SQLite ledger (WAL;
// synchronous NORMAL = crash-safe, FULL = power-safe; one autocommit INSERT per request, as the
// original's appendResolved did) and answer once the row is committed.
//
// Run: node_modules/.bin/bun server.ts --port N --db PATH --durability crash-safe|power-safe

import { Database } from "bun:sqlite";
import { Hono } from "hono";

type Effect = "allow" | "reject" | "pause";
type ArgMatch = { pointer: string; regex?: RegExp; prefix?: string; equals?: string };
type Rule = { id: string; effect: Effect; reason: string; tool: RegExp; args: ArgMatch[] };

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split("")
    .map((ch) => (ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`);
}

// Keep in step with bench/policy.toml.
const RULES: Rule[] = [
  {
    id: "reject-rm-recursive",
    effect: "reject",
    reason: "recursive delete",
    tool: globToRegExp("Bash"),
    args: [{ pointer: "/command", regex: /\brm\s+-[a-zA-Z]*[rR]/ }],
  },
  {
    id: "reject-pipe-to-shell",
    effect: "reject",
    reason: "downloads piped into a shell",
    tool: globToRegExp("Bash"),
    args: [{ pointer: "/command", regex: /\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z)?sh\b/ }],
  },
  {
    id: "reject-force-push",
    effect: "reject",
    reason: "force push rewrites shared history",
    tool: globToRegExp("Bash"),
    args: [{ pointer: "/command", regex: /\bgit\s+push\b.*\s(--force|-f)\b/ }],
  },
  {
    id: "reject-ssh-keys",
    effect: "reject",
    reason: "reads private keys",
    tool: globToRegExp("Read"),
    args: [{ pointer: "/file_path", regex: /\/\.ssh\// }],
  },
  {
    id: "allow-ls",
    effect: "allow",
    reason: "listing files is harmless",
    tool: globToRegExp("Bash"),
    args: [{ pointer: "/command", prefix: "ls " }],
  },
  {
    id: "allow-git-readonly",
    effect: "allow",
    reason: "read-only git",
    tool: globToRegExp("Bash"),
    args: [{ pointer: "/command", regex: /^git\s+(status|diff|log|show)\b/ }],
  },
  {
    id: "allow-read-project",
    effect: "allow",
    reason: "reading project files",
    tool: globToRegExp("Read"),
    args: [{ pointer: "/file_path", prefix: "/work/" }],
  },
  {
    id: "allow-github-reads",
    effect: "allow",
    reason: "read-only GitHub MCP tools",
    tool: globToRegExp("mcp__github__get_*"),
    args: [],
  },
];

/** RFC 6901 JSON pointer lookup. */
function lookup(value: unknown, pointer: string): unknown {
  if (pointer === "") return value;
  let cur: unknown = value;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function argMatches(input: Record<string, unknown>, m: ArgMatch): boolean {
  const v = lookup(input, m.pointer);
  if (typeof v !== "string") return false;
  if (m.regex) return m.regex.test(v);
  if (m.prefix !== undefined) return v.startsWith(m.prefix);
  if (m.equals !== undefined) return v === m.equals;
  return false;
}

function evaluate(tool: string, input: Record<string, unknown>) {
  for (const rule of RULES) {
    if (rule.tool.test(tool) && rule.args.every((m) => argMatches(input, m))) {
      return { effect: rule.effect, decided_by: "rule", rule_id: rule.id as string | null, reason: rule.reason };
    }
  }
  return { effect: "pause" as Effect, decided_by: "default", rule_id: null, reason: "no rule matched" };
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
  return v;
}

const port = Number(arg("port"));
const dbPath = arg("db");
const durability = arg("durability", "crash-safe");
if (durability !== "crash-safe" && durability !== "power-safe") {
  console.error(`--durability must be crash-safe or power-safe, not ${durability}`);
  process.exit(2);
}

const db = new Database(dbPath, { create: true });
db.exec("PRAGMA journal_mode = WAL");
db.exec(`PRAGMA synchronous = ${durability === "power-safe" ? "FULL" : "NORMAL"}`);
db.exec("PRAGMA busy_timeout = 5000");
db.exec(`CREATE TABLE IF NOT EXISTS action_ledger (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  tool TEXT NOT NULL,
  input TEXT NOT NULL,
  session_id TEXT,
  verdict TEXT NOT NULL,
  decided_by TEXT NOT NULL,
  rule_id TEXT,
  reason TEXT NOT NULL,
  tier2_score REAL
)`);
const insert = db.prepare(
  `INSERT INTO action_ledger (id, created_at, tool, input, session_id, verdict, decided_by, rule_id, reason)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);

function appendResolved(
  tool: string,
  input: Record<string, unknown>,
  sessionId: string | null,
  verdict: string,
  decidedBy: string,
  ruleId: string | null,
  reason: string,
): string {
  const id = `act_${crypto.randomUUID()}`;
  insert.run(id, Date.now(), tool, JSON.stringify(input), sessionId, verdict, decidedBy, ruleId, reason);
  return id;
}

function invalid(message: string) {
  return { error: { code: "invalid_request", message } };
}

const app = new Hono();

app.get("/healthz", (c) => c.json({ status: "ok", version: "peer", pending: 0, classifier: "none", policy: "bench" }));

app.post("/v1/check", async (c) => {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return c.json(invalid("body is not JSON"), 400);
  }
  if (body === null || typeof body !== "object") return c.json(invalid("body must be an object"), 400);
  const { tool, input, session_id } = body as Record<string, unknown>;
  if (typeof tool !== "string") return c.json(invalid("tool must be a string"), 400);
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return c.json(invalid("input must be an object"), 400);
  }
  const sessionId = typeof session_id === "string" ? session_id : null;
  const d = evaluate(tool, input as Record<string, unknown>);
  if (d.effect === "pause") {
    // The slow path (waiting for a human) is not part of this benchmark.
    return c.json({ error: { code: "not_benchmarked", message: "paused actions are out of scope" } }, 501);
  }
  const actionId = appendResolved(tool, input as Record<string, unknown>, sessionId, d.effect, d.decided_by, d.rule_id, d.reason);
  return c.json({
    action_id: actionId,
    verdict: d.effect,
    decided_by: d.decided_by,
    rule_id: d.rule_id,
    reason: d.reason,
    tier2: null,
  });
});

const server = Bun.serve({ hostname: "127.0.0.1", port, fetch: app.fetch });

function stop() {
  server.stop(true);
  db.close();
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
