// A fake model API on loopback for driving the real agent CLIs headless (no network, no model).
//
// It speaks just enough of three wire protocols for one agent turn:
//   - Anthropic Messages   POST /v1/messages (SSE when "stream": true), /v1/messages/count_tokens
//   - OpenAI Responses     POST /v1/responses (SSE), GET /v1/models
//   - Gemini               POST /v1beta/models/M:generateContent, :streamGenerateContent?alt=sse,
//                          :countTokens
//
// The "model" is stateless and scripted by the prompt itself: the prompt carries
// `GATEHOUSE-SCRIPT:<base64url JSON>` with `{"steps":[...], "final":"text"}`. Each request counts
// the tool results already in its conversation (n) and answers with tool call n, or, once every step
// has a result, with the final text. A step is one of
//   {"shell": "command"}                       the host's shell tool
//   {"write": {"path": P, "content": C}}       the host's file-write tool (Codex: apply_patch)
//   {"read": P}                                the host's file-read tool
//   {"task": {"prompt": P}}                    Claude Code's subagent tool (P carries its own script)
// Because a subagent's conversation starts with its own prompt, it follows its own script. Requests
// that offer no tools (titles, routing, summaries) get a short text, or JSON when JSON is asked for.
//
// Every request is recorded (method, path, parsed body) so a test can read what the model was told,
// for example the reason a hook gave for blocking a call.

import http from "node:http";

const SCRIPT_MARK = /GATEHOUSE-SCRIPT:([A-Za-z0-9_-]+)/;

/** The prompt text that makes the fake model follow `script` ({steps, final}). */
export function scriptPrompt(script, preface = "Follow the script.") {
  const encoded = Buffer.from(JSON.stringify(script)).toString("base64url");
  return `${preface} GATEHOUSE-SCRIPT:${encoded}`;
}

/** Starts the server on 127.0.0.1 with an ephemeral port. */
export async function startFakeModelApi() {
  const requests = [];
  let callCounter = 0;
  const nextId = (prefix) => `${prefix}_${Date.now().toString(36)}${(++callCounter).toString(36)}`;

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      let body = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = { unparsed: raw };
      }
      const url = new URL(req.url, "http://127.0.0.1");
      const record = { method: req.method, path: url.pathname, query: url.search, body, at: Date.now() };
      requests.push(record);
      try {
        route(req.method, url, body, res, nextId, record);
      } catch (err) {
        record.error = String(err?.stack ?? err);
        sendJson(res, 500, { error: { type: "fake_model_api_error", message: String(err) } });
      }
    });
  });
  // Keep-alive sockets would hold close() open; the CLIs come and go per run.
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    /** Every text the model was shown as a tool result, across all protocols, in order. */
    toolResults: () => requests.flatMap((r) => toolResultTexts(r)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

function route(method, url, body, res, nextId, record) {
  const p = url.pathname;
  if (method === "GET" && /\/models\/?$/.test(p)) {
    return sendJson(res, 200, { object: "list", data: [], models: [] });
  }
  if (method !== "POST") return sendJson(res, 404, { error: { message: `no route ${method} ${p}` } });
  if (p.endsWith("/v1/messages/count_tokens")) return sendJson(res, 200, { input_tokens: 100 });
  if (p.endsWith("/v1/messages")) return anthropic(body, res, nextId, record);
  if (p.endsWith("/responses")) return openaiResponses(body, res, nextId, record);
  const gem = p.match(/\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/);
  if (gem) return gemini(gem[1], gem[2], body, res, nextId, record);
  return sendJson(res, 404, { error: { message: `no route ${method} ${p}` } });
}

// ---------- the script ----------

function findScript(texts) {
  for (const t of texts) {
    const m = typeof t === "string" ? t.match(SCRIPT_MARK) : null;
    if (m) {
      try {
        return JSON.parse(Buffer.from(m[1], "base64url").toString("utf8"));
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** The next move: {step} or {final} given the script and the number of tool results so far. */
function nextMove(script, resultsSoFar) {
  if (!script) return { final: "OK" };
  const steps = script.steps ?? [];
  if (resultsSoFar < steps.length) return { step: steps[resultsSoFar] };
  return { final: script.final ?? "Done." };
}

// ---------- Anthropic Messages (Claude Code) ----------

function anthropicTexts(body) {
  const out = [];
  for (const m of body?.messages ?? []) {
    if (m.role !== "user") continue;
    if (typeof m.content === "string") out.push(m.content);
    else for (const b of m.content ?? []) if (b.type === "text") out.push(b.text);
  }
  return out;
}

function anthropicToolResults(body) {
  const out = [];
  for (const m of body?.messages ?? []) {
    if (m.role !== "user" || typeof m.content === "string") continue;
    for (const b of m.content ?? []) if (b.type === "tool_result") out.push(b);
  }
  return out;
}

function anthropicToolUse(step, tools, nextId) {
  const names = new Set(tools.map((t) => t.name));
  const pick = (...cands) => cands.find((c) => names.has(c));
  let name;
  let input;
  if (step.shell !== undefined) {
    name = pick("Bash");
    input = { command: step.shell, description: "Run the scripted command" };
  } else if (step.write) {
    name = pick("Write");
    input = { file_path: step.write.path, content: step.write.content };
  } else if (step.read !== undefined) {
    name = pick("Read");
    input = { file_path: step.read };
  } else if (step.task) {
    name = pick("Task", "Agent");
    input = { description: "Scripted subagent", prompt: step.task.prompt, subagent_type: "general-purpose" };
  }
  if (!name) return null;
  return { type: "tool_use", id: nextId("toolu"), name, input };
}

function anthropic(body, res, nextId, record) {
  const tools = body?.tools ?? [];
  const results = anthropicToolResults(body);
  let content;
  let stopReason = "end_turn";
  const wantsScript = tools.some((t) => ["Bash", "Write", "Read", "Task", "Agent"].includes(t.name));
  const move = wantsScript ? nextMove(findScript(anthropicTexts(body)), results.length) : { final: "OK" };
  const toolUse = move.step ? anthropicToolUse(move.step, tools, nextId) : null;
  if (toolUse) {
    content = [toolUse];
    stopReason = "tool_use";
  } else {
    content = [{ type: "text", text: move.final ?? `no tool for step ${JSON.stringify(move.step)}` }];
  }
  record.reply = content;
  const message = {
    id: nextId("msg"),
    type: "message",
    role: "assistant",
    model: body?.model ?? "claude-fake",
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: { input_tokens: 100, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
  if (!body?.stream) return sendJson(res, 200, message);

  const events = [];
  events.push(["message_start", { type: "message_start", message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } } }]);
  content.forEach((block, index) => {
    if (block.type === "text") {
      events.push(["content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }]);
      events.push(["content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: block.text } }]);
    } else {
      events.push(["content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: block.id, name: block.name, input: {} } }]);
      events.push(["content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(block.input) } }]);
    }
    events.push(["content_block_stop", { type: "content_block_stop", index }]);
  });
  events.push(["message_delta", { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 20 } }]);
  events.push(["message_stop", { type: "message_stop" }]);
  sendSse(res, events.map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
}

// ---------- OpenAI Responses (Codex CLI) ----------

function responsesTexts(body) {
  const out = [];
  if (typeof body?.input === "string") out.push(body.input);
  for (const item of Array.isArray(body?.input) ? body.input : []) {
    if (item.role !== "user") continue;
    if (typeof item.content === "string") out.push(item.content);
    else for (const c of item.content ?? []) if (typeof c.text === "string") out.push(c.text);
  }
  return out;
}

function responsesToolResults(body) {
  return (Array.isArray(body?.input) ? body.input : []).filter((i) =>
    ["function_call_output", "custom_tool_call_output", "local_shell_call_output"].includes(i.type),
  );
}

function responsesToolCall(step, tools, nextId) {
  const byName = new Map(tools.map((t) => [t.name ?? t.type, t]));
  const callId = nextId("call");
  const fn = (name, args) => ({ type: "function_call", id: nextId("fc"), call_id: callId, name, arguments: JSON.stringify(args), status: "completed" });
  if (step.shell !== undefined) {
    if (byName.has("exec_command")) return fn("exec_command", { cmd: step.shell });
    if (byName.has("shell_command")) return fn("shell_command", { command: step.shell });
    if (byName.has("shell")) return fn("shell", { command: ["bash", "-lc", step.shell] });
    return null;
  }
  if (step.write) {
    const patch = `*** Begin Patch\n*** Add File: ${step.write.path}\n${step.write.content
      .replace(/\n$/, "")
      .split("\n")
      .map((l) => `+${l}`)
      .join("\n")}\n*** End Patch\n`;
    const tool = byName.get("apply_patch");
    if (!tool) return null;
    if (tool.type === "custom") return { type: "custom_tool_call", id: nextId("ctc"), call_id: callId, name: "apply_patch", input: patch, status: "completed" };
    return fn("apply_patch", { input: patch });
  }
  if (step.read !== undefined) {
    // Codex has no read tool: the model reads with the shell.
    return responsesToolCall({ shell: `cat ${JSON.stringify(step.read)}` }, tools, nextId);
  }
  return null;
}

function openaiResponses(body, res, nextId, record) {
  const tools = body?.tools ?? [];
  const results = responsesToolResults(body);
  const move = tools.length ? nextMove(findScript(responsesTexts(body)), results.length) : { final: "OK" };
  const call = move.step ? responsesToolCall(move.step, tools, nextId) : null;
  const responseId = nextId("resp");
  const item = call ?? {
    type: "message",
    role: "assistant",
    id: nextId("msg"),
    status: "completed",
    content: [{ type: "output_text", text: move.final ?? `no tool for step ${JSON.stringify(move.step)}`, annotations: [] }],
  };
  record.reply = item;
  const usage = { input_tokens: 100, input_tokens_details: { cached_tokens: 0 }, output_tokens: 20, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 120 };
  const events = [
    { type: "response.created", response: { id: responseId, object: "response", status: "in_progress", output: [] } },
    { type: "response.output_item.added", output_index: 0, item },
    { type: "response.output_item.done", output_index: 0, item },
    { type: "response.completed", response: { id: responseId, object: "response", status: "completed", output: [item], usage } },
  ];
  if (body?.stream === false) return sendJson(res, 200, events[3].response);
  sendSse(res, events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
}

// ---------- Gemini (Gemini CLI) ----------

function geminiTexts(body) {
  const out = [];
  for (const c of body?.contents ?? []) {
    if (c.role !== "user") continue;
    for (const p of c.parts ?? []) if (typeof p.text === "string") out.push(p.text);
  }
  return out;
}

function geminiToolResults(body) {
  const out = [];
  for (const c of body?.contents ?? []) for (const p of c.parts ?? []) if (p.functionResponse) out.push(p.functionResponse);
  return out;
}

function geminiFunctionCall(step, tools) {
  const decls = tools.flatMap((t) => t.functionDeclarations ?? t.function_declarations ?? []);
  const byName = new Map(decls.map((d) => [d.name, d]));
  const firstParam = (name, fallback) => {
    const schema = byName.get(name)?.parametersJsonSchema ?? byName.get(name)?.parameters;
    return schema?.required?.[0] ?? fallback;
  };
  if (step.shell !== undefined && byName.has("run_shell_command")) {
    return { name: "run_shell_command", args: { command: step.shell, description: "Run the scripted command" } };
  }
  if (step.write && byName.has("write_file")) {
    return { name: "write_file", args: { [firstParam("write_file", "file_path")]: step.write.path, content: step.write.content } };
  }
  if (step.read !== undefined && byName.has("read_file")) {
    return { name: "read_file", args: { [firstParam("read_file", "file_path")]: step.read } };
  }
  return null;
}

function gemini(model, verb, body, res, _nextId, record) {
  if (verb === "countTokens") return sendJson(res, 200, { totalTokens: 100 });
  const tools = body?.tools ?? [];
  const hasTools = tools.some((t) => (t.functionDeclarations ?? t.function_declarations ?? []).length);
  const results = geminiToolResults(body);
  const wantsJson = body?.generationConfig?.responseMimeType === "application/json";
  let parts;
  if (hasTools) {
    const move = nextMove(findScript(geminiTexts(body)), results.length);
    const call = move.step ? geminiFunctionCall(move.step, tools) : null;
    parts = call ? [{ functionCall: call }] : [{ text: move.final ?? `no tool for step ${JSON.stringify(move.step)}` }];
  } else if (wantsJson) {
    // Routing ("which model?", two classifiers) and next-speaker checks ask for JSON; one object
    // answers them all.
    const answer = { reasoning: "scripted", model_choice: "flash", complexity_reasoning: "scripted", complexity_score: 10, next_speaker: "user" };
    parts = [{ text: JSON.stringify(answer) }];
  } else {
    parts = [{ text: "OK" }];
  }
  record.reply = parts;
  const response = {
    candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: 100, candidatesTokenCount: 20, totalTokenCount: 120 },
    modelVersion: model,
  };
  if (verb === "generateContent") return sendJson(res, 200, response);
  sendSse(res, [`data: ${JSON.stringify(response)}\r\n\r\n`]);
}

// ---------- recorded tool results, for assertions ----------

function flattenText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((c) => (typeof c === "string" ? c : c.text ?? flattenText(c.content) ?? "")).join("\n");
  if (content && typeof content === "object") return JSON.stringify(content);
  return "";
}

function toolResultTexts(record) {
  const b = record.body;
  if (!b || typeof b !== "object") return [];
  if (record.path.endsWith("/v1/messages")) return anthropicToolResults(b).map((r) => flattenText(r.content));
  if (record.path.endsWith("/responses")) return responsesToolResults(b).map((r) => flattenText(r.output));
  if (/:(stream)?[gG]enerateContent$/.test(record.path)) return geminiToolResults(b).map((r) => JSON.stringify(r.response ?? r));
  return [];
}

// ---------- plumbing ----------

function sendJson(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendSse(res, frames) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "close" });
  for (const f of frames) res.write(f);
  res.end();
}
