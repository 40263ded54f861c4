"""Test harness: a real `gatehouse serve` (GATEHOUSE_BIN) over a temporary data dir, with a policy
written here so allow / reject / pause are deterministic; plus the approver's calls and fake
servers (down, hanging, garbage) for the fail-closed tests."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

POLICY = """
default = "reject"

[[rules]]
id = "allow-safe"
effect = "allow"
tool = ["get_weather", "add", "Read", "mcp__files__read_file", "guarded_add", "guarded_async_add"]

[[rules]]
id = "no-delete"
effect = "reject"
reason = "deleting files is not allowed here"
tool = ["delete_*", "mcp__files__delete_file"]

[[rules]]
id = "pause-send"
effect = "pause"
reason = "sending leaves the machine"
tool = ["send_*", "mcp__mail__*"]
"""


def gatehouse_bin() -> str:
    explicit = os.environ.get("GATEHOUSE_BIN")
    if explicit:
        return explicit
    here = Path(__file__).resolve()
    return str(here.parents[3] / "target" / "debug" / "gatehouse")


class Daemon:
    """A running daemon; `stop()` kills it (also on garbage collection of the test's fixture)."""

    def __init__(self, deadline_ms: int = 120_000, socket_path: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gatehouse-sdk-py-"))
        (self.dir / "policy.toml").write_text(POLICY)
        binary = gatehouse_bin()
        defaults = subprocess.run([binary, "config", "print-default"], capture_output=True, text=True, check=True).stdout
        config = f"[approvals]\ndeadline_ms = {deadline_ms}\n"
        if "presence" in defaults:
            # Tests approve through the API, standing in for the person.
            config += 'presence = "off"\n'
        (self.dir / "gatehouse.toml").write_text(config)
        self.data = self.dir / "data"
        args = [binary, "serve", "--listen", "127.0.0.1:0", "--policy", str(self.dir / "policy.toml"),
                "--data-dir", str(self.data), "--config", str(self.dir / "gatehouse.toml")]
        self.socket: str | None = None
        if socket_path:
            self.socket = str(self.dir / "check.sock")
            args += ["--socket", self.socket]
        env = dict(os.environ, HOME=str(self.dir), TMPDIR=str(self.dir), GATEHOUSE_LOG="warn",
                   GATEHOUSE_APPROVALS_PRESENCE="off")
        env.pop("GATEHOUSE_DATA_DIR", None)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        prefix = "gatehouse listening on "
        if not first.startswith(prefix):
            self.stop()
            raise RuntimeError(f"gatehouse serve did not start: {first!r}")
        self.url = first[len(prefix):]
        threading.Thread(target=self._drain, daemon=True).start()
        self.agent_token = (self.data / "agent.token").read_text().strip()
        self.approver_token = (self.data / "approver.token").read_text().strip()
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def approver(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {self.approver_token}", "Content-Type": "application/json"}
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def actions(self, status: str = "all") -> list[dict[str, Any]]:
        code, answer = self.approver("GET", f"/v1/actions?status={status}&limit=500")
        assert code == 200, answer
        return list(answer["actions"])

    def pending_for(self, tool_use_id: str | None = None, tool: str | None = None,
                    session: str | None = None) -> dict[str, Any] | None:
        for action in self.actions("pending"):
            if ((tool_use_id is None or action["tool_use_id"] == tool_use_id) and (tool is None or action["tool"] == tool)
                    and (session is None or action["session_id"] == session)):
                return action
        return None

    def decide(self, action: dict[str, Any], decision: str, note: str | None = None,
               edited: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": decision, "action_hash": action["action_hash"]}
        if note is not None:
            body["note"] = note
        if edited is not None:
            body["input"] = edited
        code, answer = self.approver("POST", f"/v1/actions/{action['action_id']}/decision", body)
        assert code == 200, answer
        return dict(answer)

    def decide_when_pending(self, decision: str, tool: str | None = None, note: str | None = None,
                            timeout: float = 30.0, after: threading.Event | None = None,
                            tool_use_id: str | None = None, session: str | None = None,
                            edited: dict[str, Any] | None = None) -> threading.Thread:
        """A person, in another thread: waits (polling the ledger) for the paused action, decides it
        (only once `after` is set, when given)."""

        def run() -> None:
            import time
            if after is not None:
                after.wait(timeout)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                action = self.pending_for(tool_use_id=tool_use_id, tool=tool, session=session)
                if action is not None:
                    self.decide(action, decision, note, edited)
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeServer:
    """A loopback TCP server standing in for a broken daemon: `hang` accepts and never answers;
    `garbage` answers 200 with a body that is not a CheckResponse; `html` answers 200 text."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.mode == "hang":
                continue
            try:
                conn.recv(65536)
                if self.mode == "garbage":
                    body = b'{"verdict": "maybe", "action_id": 7}'
                else:
                    body = b"<html>allow</html>"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self.conns:
            conn.close()


class DroppingProxy:
    """A loopback TCP proxy to the daemon that cuts the first `drops` connections shortly after
    the request went through (before the answer), like a network blip or a restarted sidecar."""

    def __init__(self, target_port: int, drops: int = 1, after: float = 0.3) -> None:
        self.target_port = target_port
        self.drops = drops
        self.after = after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.dropped = 0
        self.cut = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            drop = self.dropped < self.drops
            if drop:
                self.dropped += 1
            threading.Thread(target=self._pipe, args=(client, upstream, drop, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, drop: bool, outbound: bool) -> None:
        mine, theirs = f"127.0.0.1:{self.port}".encode(), f"127.0.0.1:{self.target_port}".encode()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if outbound:
                    # The daemon checks Host; name it, not the proxy.
                    data = data.replace(b"Host: " + mine, b"Host: " + theirs)
                dst.sendall(data)
                if drop:
                    threading.Timer(self.after, self._cut, args=(src, dst, self.cut)).start()
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @staticmethod
    def _cut(a: socket.socket, b: socket.socket, cut: threading.Event) -> None:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        cut.set()

    def stop(self) -> None:
        self.sock.close()
