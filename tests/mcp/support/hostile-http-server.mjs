// A deliberately hostile Streamable HTTP MCP server for the HTTP proxy's hostile-traffic tests
// (a test fixture: no real server misbehaves on demand). Logs every POST body it receives to
// $HOSTILE_LOG (to prove what was and was not forwarded) and:
//   - answers initialize (with an Mcp-Session-Id), tools/list (echo, crash, write, flood), ping;
//   - tools/call echo: answers with the message;
//   - tools/call crash: destroys the connection mid-call (a server that dies);
//   - tools/call flood: answers over SSE with 5,000 notifications/message before the result;
//   - tools/call write: answers "written" (the tests keep it paused or withdrawn).
// Usage: node hostile-http-server.mjs PORT  (prints "listening on port PORT").
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

const log = process.env.HOSTILE_LOG;
const port = Number(process.argv[2]);
const tools = ['echo', 'crash', 'write', 'flood'].map((name) => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object' } }));

createServer((req, res) => {
  if (req.method !== 'POST') { res.writeHead(405).end(); return; }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (log) appendFileSync(log, `${body.replace(/\n/g, ' ')}\n`);
    let msg;
    try { msg = JSON.parse(body); } catch { res.writeHead(400).end(); return; }
    const json = (result, headers = {}) => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    };
    if (msg.id === undefined) { res.writeHead(202).end(); return; }
    if (msg.method === 'initialize') {
      json({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'hostile-http', version: '1' } },
        { 'mcp-session-id': 'hostile-session' });
    } else if (msg.method === 'tools/list') {
      json({ tools });
    } else if (msg.method === 'tools/call') {
      const name = msg.params?.name;
      if (name === 'crash') { req.socket.destroy(); return; }
      if (name === 'flood') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < 5000; i += 1) {
          res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: `flood ${i}` } })}\n\n`);
        }
        res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'flooded' }] } })}\n\n`);
        return;
      }
      const text = name === 'echo' ? String(msg.params?.arguments?.message ?? '') : 'written';
      json({ content: [{ type: 'text', text }] });
    } else {
      json({});
    }
  });
}).listen(port, '127.0.0.1', () => console.error(`listening on port ${port}`));
