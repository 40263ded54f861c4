"""`gatehouse mcp http` with the official Python SDK (`mcp` 2.3.0) on both sides: its client in
front of the proxy, its MCPServer (support/py_http_server.py) behind it, over the stateful
revision (2025-11-25: `initialize`, `Mcp-Session-Id`) and the stateless one (2026-07-28:
`server/discover`, per-request `_meta`, `Mcp-Method`/`Mcp-Name` headers). The SDK is the only
installed part that speaks 2026-07-28 (server-everything and the TypeScript SDK do not).

Covers, per revision: an allowed call and its agent and annotations in the ledger; a rejected
write that never reaches the disk; a paused call with progress notifications over SSE, run once
after approval; a rug pull (a changed description and a new tool) whose calls pause until a
person accepts the new definition, and are refused when they reject it; the Mcp-Name guard.

Run by scripts/test-mcp.sh with the venv's python; prints `N passed, N failed` last.
"""

import asyncio
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx2
from mcp import Client
from mcp_types import Implementation

from python_client_test import GATEHOUSE, Daemon, text

HERE = Path(__file__).resolve().parent
SERVER = str(HERE / "support/py_http_server.py")

POLICY = """
default = "pause"

[[rules]]
id = "harmless"
effect = "allow"
tool = ["mcp__py*__echo", "mcp__py*__rug_pull", "mcp__py*__late"]

[[rules]]
id = "no-forbidden-notes"
effect = "reject"
reason = "forbidden notes are not written"
tool = "mcp__py*__write_note"
[[rules.args]]
pointer = "/name"
regex = "forbidden"

[[rules]]
id = "first-sight"
effect = "allow"
tool = "gatehouse.mcp.tool_definition"
[[rules.args]]
pointer = "/change"
equals = "first_sight"
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """The Python server and `gatehouse mcp http` in front of it, for one test."""

    def __init__(self, d: Daemon, name: str) -> None:
        self.notes = os.path.join(d.dir, f"notes-{name}")
        os.makedirs(self.notes)
        port = free_port()
        self.server = subprocess.Popen(
            [sys.executable, SERVER, str(port), self.notes],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        line = self.server.stderr.readline()
        assert "listening" in line, line
        upstream = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 20
        while True:  # uvicorn binds after the line above: wait until it answers
            try:
                httpx2.get(upstream, timeout=1)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.proxy = subprocess.Popen(
            [GATEHOUSE, "mcp", "http", "--upstream", upstream, "--listen", "127.0.0.1:0", "--name", name,
             "--url", d.url, "--data-dir", d.data],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={"PATH": os.environ["PATH"], "HOME": d.dir, "TMPDIR": d.dir},
        )
        m = re.search(r"listening on (http://\S+)", self.proxy.stdout.readline())
        assert m, "gatehouse mcp http did not start"
        self.url = m.group(1)
        self.token = Path(d.data, "mcp-http.token").read_text().strip()

    def client(self, mode: str) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
        from mcp.client.streamable_http import streamable_http_client

        return Client(streamable_http_client(self.url, http_client=http), mode=mode,
                      client_info=Implementation(name="py-client", version="1"))

    def stop(self) -> None:
        for proc in (self.proxy, self.server):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def pending(d: Daemon, match) -> dict:
    for _ in range(400):
        found = [a for a in await asyncio.to_thread(d.actions) if a["verdict"] == "pending" and match(a)]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("nothing paused")


async def scenario(d: Daemon, mode: str, name: str) -> None:
    run = Running(d, name)
    try:
        async with run.client(mode) as client:
            expected = "2026-07-28" if mode != "legacy" else "2025-11-25"
            assert client.protocol_version == expected, client.protocol_version
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"echo", "write_note", "rug_pull"} <= tools, tools

            # Allowed: through, with the client's name and the annotations (hints) in the ledger.
            echoed = await client.call_tool("echo", {"message": f"hello {mode}"})
            assert text(echoed) == f"hello {mode}", text(echoed)
            rec = [a for a in d.actions() if a["tool"] == f"mcp__{name}__echo"][0]
            assert rec["verdict"] == "allow", rec
            assert rec["agent"] == "py-client", rec["agent"]
            assert rec["context"]["annotations"]["readOnlyHint"] is True, rec["context"]

            # The next check carries the last output of the session.
            await client.call_tool("echo", {"message": "second"})
            second = [a for a in d.actions() if a["tool"] == f"mcp__{name}__echo"][0]
            assert f"hello {mode}" in second["context"].get("previous_output", ""), second["context"]

            # Rejected: never on disk.
            rejected = await client.call_tool("write_note", {"name": "forbidden.txt", "text": "x"})
            assert rejected.is_error and "forbidden notes" in text(rejected), text(rejected)
            assert not os.path.exists(os.path.join(run.notes, "forbidden.txt"))

            # Paused: progress over SSE names the action; approved, it runs once.
            seen: list[str] = []

            async def progress(_p, _t, message):
                m = re.search(r"\(action ([^)]+)\)", message or "")
                if m:
                    seen.append(m.group(1))

            call = asyncio.ensure_future(client.call_tool(
                "write_note", {"name": "ok.txt", "text": "approved"}, progress_callback=progress))
            paused = await pending(d, lambda a: a["tool"] == f"mcp__{name}__write_note")
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.05)
            assert seen and seen[0] == paused["action_id"], (seen, paused["action_id"])
            assert not os.path.exists(os.path.join(run.notes, "ok.txt")), "ran before the approval"
            await asyncio.to_thread(d.decide, paused["action_id"], "approve")
            done = await asyncio.wait_for(call, 30)
            assert text(done) == "written", text(done)
            assert Path(run.notes, "ok.txt").read_text() == "approved"

            # A rug pull: echo's description changes and `late` appears.
            assert text(await client.call_tool("rug_pull", {})) == "pulled"
            relisted = {t.name: t for t in (await client.list_tools()).tools}
            assert "id_rsa" in (relisted["echo"].description or ""), relisted["echo"]
            changed = await pending(d, lambda a: a["tool"] == "gatehouse.mcp.tool_definition"
                                    and a["input"]["server"] == name and a["input"]["tool"] == "echo")
            assert changed["input"]["change"] == "changed", changed["input"]
            assert any(line.startswith("description:") for line in changed["input"]["diff"]), changed["input"]
            new = await pending(d, lambda a: a["tool"] == "gatehouse.mcp.tool_definition"
                                and a["input"]["server"] == name and a["input"]["tool"] == "late")
            assert new["input"]["change"] == "new"

            # A call to the changed tool waits (allowed by the policy, but not accepted) ...
            held = asyncio.ensure_future(client.call_tool("echo", {"message": "after the pull"}))
            await asyncio.sleep(0.5)
            assert not held.done(), "a call to a changed tool was not held"
            assert not [a for a in d.actions() if a["tool"] == f"mcp__{name}__echo"
                        and a["input"].get("message") == "after the pull"], "checked before acceptance"
            # ... until a person accepts the new definition: then it is checked and runs.
            await asyncio.to_thread(d.decide, changed["action_id"], "approve")
            released = await asyncio.wait_for(held, 30)
            assert text(released) == "after the pull", text(released)
            # A rejected new definition: its calls are refused, never forwarded.
            await asyncio.to_thread(d.decide, new["action_id"], "deny")
            refused = None
            for _ in range(100):
                refused = await client.call_tool("late", {"x": "1"})
                if refused.is_error and "rejected" in text(refused):
                    break
                await asyncio.sleep(0.05)
            assert refused.is_error and "rejected" in text(refused), text(refused)

        # Mcp-Name names another tool than the body: 400, nothing forwarded.
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "write_note", "arguments": {"name": "smuggled.txt", "text": "x"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}}}
        res = httpx2.post(run.url, json=body, timeout=30, headers={
            "authorization": f"Bearer {run.token}", "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo"})
        assert res.status_code == 400, (res.status_code, res.text)
        assert not os.path.exists(os.path.join(run.notes, "smuggled.txt"))
    finally:
        run.stop()


async def main() -> int:
    passed = failed = 0
    d = Daemon(POLICY)
    try:
        for mode, name in (("legacy", "pyold"), ("2026-07-28", "pynew"), ("auto", "pyauto")):
            label = f"python http {mode}"
            try:
                await asyncio.wait_for(scenario(d, mode, name), 180)
                print(f"ok - {label}")
                passed += 1
            except BaseException:  # noqa: BLE001 - report every failure, then go on
                print(f"not ok - {label}")
                traceback.print_exc()
                failed += 1
    finally:
        d.stop()
    print(f"python-mcp-http: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
