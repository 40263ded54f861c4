"""The stdio proxy with the official Python SDK (`mcp` on PyPI) as the client, in front of the
real `mcp-server-git` (PyPI) and `@modelcontextprotocol/server-filesystem` (npm).

Run by scripts/test-mcp.sh with the venv's python: `python python_client_test.py`. Starts its own
`gatehouse serve` (GATEHOUSE_BIN) over a temp dir; prints `N passed, N failed` last.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.request
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GATEHOUSE = str((REPO / os.environ.get("GATEHOUSE_BIN", "target/debug/gatehouse")).resolve())
GIT_SERVER = str(HERE / ".venv/bin/mcp-server-git")
FS_SERVER = str(HERE / "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js")
NODE = shutil.which("node") or "node"

POLICY = """
default = "pause"

[[rules]]
id = "reads"
effect = "allow"
tool = ["mcp__git__git_status", "mcp__git__git_log", "mcp__fs__read_text_file"]

[[rules]]
id = "no-forbidden-writes"
effect = "reject"
reason = "writes to forbidden files are not allowed"
tool = "mcp__fs__write_file"
[[rules.args]]
pointer = "/path"
regex = "forbidden"

[[rules]]
id = "first-sight"
effect = "allow"
tool = "gatehouse.mcp.tool_definition"
[[rules.args]]
pointer = "/change"
equals = "first_sight"
"""


class Daemon:
    def __init__(self, policy_text: str = POLICY) -> None:
        self.dir = tempfile.mkdtemp(prefix="gatehouse-mcp-py-")
        self.data = os.path.join(self.dir, "data")
        policy = os.path.join(self.dir, "policy.toml")
        Path(policy).write_text(policy_text)
        env = {**os.environ, "HOME": self.dir, "TMPDIR": self.dir, "GATEHOUSE_APPROVALS_PRESENCE": "off"}
        self.proc = subprocess.Popen(
            [GATEHOUSE, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data, "--policy", policy],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        line = self.proc.stdout.readline()
        match = re.search(r"gatehouse listening on (http://\S+)", line)
        if not match:
            raise RuntimeError(f"gatehouse serve did not start: {line!r}")
        self.url = match.group(1).rstrip("/")
        self.approver = Path(self.data, "approver.token").read_text().strip()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"authorization": f"Bearer {self.approver}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())

    def decide(self, action_id: str, decision: str) -> None:
        view = self.api("GET", f"/v1/actions/{action_id}")
        self.api("POST", f"/v1/actions/{action_id}/decision", {"decision": decision, "action_hash": view["action_hash"]})

    def actions(self) -> list[dict]:
        return self.api("GET", "/v1/actions?limit=500")["actions"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def proxied(d: Daemon, name: str, command: list[str]) -> StdioServerParameters:
    return StdioServerParameters(
        command=GATEHOUSE,
        args=["mcp", "stdio", "--name", name, "--url", d.url, "--data-dir", d.data, "--", *command],
        env={"HOME": d.dir, "TMPDIR": d.dir},
    )


def text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None) is not None)


async def call_paused(session: ClientSession, name: str, args: dict, on_pause) -> object:
    """Calls a tool that pauses; `on_pause(action_id)` runs once on the first progress report."""
    paused = asyncio.Event()
    seen: list[str] = []

    async def progress(_p, _total, message):
        m = re.search(r"\(action ([^)]+)\)", message or "")
        if m and not seen:
            seen.append(m.group(1))
            paused.set()

    call = asyncio.ensure_future(session.call_tool(name, args, progress_callback=progress))
    await asyncio.wait_for(paused.wait(), 20)
    await asyncio.to_thread(on_pause, seen[0])
    return await asyncio.wait_for(call, 30)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


async def test_git_server(d: Daemon) -> None:
    repo = os.path.join(d.dir, "repo")
    os.makedirs(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "first")
    Path(repo, "new.txt").write_text("x")
    params = proxied(d, "git", [GIT_SERVER, "--repository", repo])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}
            assert "git_status" in tools and "git_add" in tools, tools
            # Allowed: the server's own answer comes back.
            status = await session.call_tool("git_status", {"repo_path": repo})
            assert not status.is_error, text(status)
            assert "new.txt" in text(status), text(status)
            # Paused then denied: never executed (nothing staged).
            denied = await call_paused(session, "git_add", {"repo_path": repo, "files": ["new.txt"]},
                                       lambda a: d.decide(a, "deny"))
            assert denied.is_error, text(denied)
            assert git(repo, "diff", "--cached", "--name-only").strip() == "", "staged after a deny"
            # Paused then approved: executed once.
            approved = await call_paused(session, "git_add", {"repo_path": repo, "files": ["new.txt"]},
                                         lambda a: d.decide(a, "approve"))
            assert not approved.is_error, text(approved)
            assert git(repo, "diff", "--cached", "--name-only").strip() == "new.txt"
    recorded = [a for a in d.actions() if a["tool"] == "mcp__git__git_add"]
    assert sorted(a["verdict"] for a in recorded) == ["allow", "reject"], recorded


async def test_filesystem_server(d: Daemon) -> None:
    root = os.path.join(d.dir, "project")
    os.makedirs(root)
    Path(root, "a.txt").write_bytes("bytes: é\r\n\x01 end".encode())
    params = proxied(d, "fs", [NODE, FS_SERVER, root])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            read_back = await session.call_tool("read_text_file", {"path": os.path.join(root, "a.txt")})
            assert text(read_back) == Path(root, "a.txt").read_bytes().decode(), repr(text(read_back))
            target = os.path.join(root, "forbidden.txt")
            rejected = await session.call_tool("write_file", {"path": target, "content": "pwned"})
            assert rejected.is_error
            assert "writes to forbidden files" in text(rejected), text(rejected)
            assert not os.path.exists(target), "a rejected write reached the disk"


async def main() -> int:
    passed = failed = 0
    d = Daemon()
    try:
        for test in (test_git_server, test_filesystem_server):
            try:
                await asyncio.wait_for(test(d), 120)
                print(f"ok - {test.__name__}")
                passed += 1
            except BaseException:  # noqa: BLE001 - report every failure, then go on
                print(f"not ok - {test.__name__}")
                traceback.print_exc()
                failed += 1
    finally:
        d.stop()
    print(f"python-mcp: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
