"""The sync and async clients against the real daemon (and fake broken daemons on loopback)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from daemon import Daemon, DroppingProxy, FakeServer, free_port

from gatehouse import (
    ActionRejected,
    AsyncGatehouse,
    Gatehouse,
    GatehouseApiError,
    GatehouseConfigError,
    GatehouseTimeout,
    GatehouseUnavailable,
    guarded,
)


def client(d: Daemon, **kwargs: object) -> Gatehouse:
    return Gatehouse(d.url, d.agent_token, **kwargs)  # type: ignore[arg-type]


def test_allow(daemon: Daemon) -> None:
    decision = client(daemon).check("get_weather", {"city": "Lisbon"})
    assert decision.verdict == "allow" and decision.allowed
    assert decision.decided_by == "rule" and decision.rule_id == "allow-safe"
    assert decision.action_id.startswith("act_")


def test_reject_with_reason(daemon: Daemon) -> None:
    gate = client(daemon)
    decision = gate.check("delete_file", {"path": "/etc/passwd"})
    assert decision.verdict == "reject" and not decision.allowed
    assert decision.reason == "deleting files is not allowed here"
    with pytest.raises(ActionRejected) as err:
        gate.require("delete_file", {"path": "/etc/passwd"})
    assert err.value.reason == "deleting files is not allowed here"
    assert err.value.action_id.startswith("act_") and err.value.rule_id == "no-delete"


def test_pause_then_approve_returns_allow(daemon: Daemon) -> None:
    person = daemon.decide_when_pending("approve", tool="send_email", session="py-pause-approve")
    decision = client(daemon, poll_wait=1.0, session_id="py-pause-approve").check("send_email", {"to": "a@example.com"})
    person.join()
    assert decision.verdict == "allow" and decision.decided_by == "human"


def test_pause_then_deny(daemon: Daemon) -> None:
    person = daemon.decide_when_pending("deny", tool="send_sms", note="not today")
    with pytest.raises(ActionRejected) as err:
        client(daemon).require("send_sms", {"to": "+351"})
    person.join()
    assert err.value.decided_by == "human" and "not today" in err.value.reason


def test_no_wait_answers_pending_and_poll_follows(daemon: Daemon) -> None:
    gate = client(daemon)
    first = gate.check("send_fax", {"n": 1}, tool_use_id="fax-1", wait=False)
    assert first.pending
    assert gate.poll(first.action_id, wait=0).pending
    action = daemon.pending_for(tool_use_id="fax-1")
    assert action is not None
    daemon.decide(action, "approve")
    assert gate.poll(first.action_id, wait=5).allowed
    # Re-sending the same check re-attaches to the decided action: no second action.
    again = gate.check("send_fax", {"n": 1}, tool_use_id="fax-1")
    assert again.action_id == first.action_id and again.allowed


def test_deadline_rejects() -> None:
    d = Daemon(deadline_ms=800)
    try:
        decision = client(d, poll_wait=0.3).check("send_letter", {"to": "x"})
        assert decision.verdict == "reject" and decision.decided_by == "timeout"
    finally:
        d.stop()


def test_pending_past_the_clients_deadline_is_an_error(daemon: Daemon) -> None:
    with pytest.raises(GatehouseTimeout):
        client(daemon, poll_wait=0.2).check("send_pigeon", {"to": "x"}, wait=0.6)


def test_daemon_down_is_an_error() -> None:
    gate = Gatehouse(f"http://127.0.0.1:{free_port()}", "t" * 64)
    with pytest.raises(GatehouseUnavailable):
        gate.check("get_weather", {})
    with pytest.raises(GatehouseUnavailable):
        asyncio.run(AsyncGatehouse(f"http://127.0.0.1:{free_port()}", "t").check("get_weather", {}))


@pytest.mark.parametrize("mode", ["garbage", "html"])
def test_daemon_answering_garbage_is_an_error(mode: str) -> None:
    fake = FakeServer(mode)  # a fake daemon: the real one never answers like this
    try:
        with pytest.raises(GatehouseUnavailable):
            Gatehouse(fake.url, "t").check("get_weather", {})
        with pytest.raises(GatehouseUnavailable):
            asyncio.run(AsyncGatehouse(fake.url, "t").check("get_weather", {}))
    finally:
        fake.stop()


def test_daemon_hanging_is_a_timeout() -> None:
    fake = FakeServer("hang")  # a fake daemon that accepts and never answers
    try:
        started = time.monotonic()
        with pytest.raises(GatehouseTimeout):
            Gatehouse(fake.url, "t", request_timeout=0.5).check("get_weather", {}, wait=0.8)
        with pytest.raises(GatehouseTimeout):
            asyncio.run(AsyncGatehouse(fake.url, "t").check("get_weather", {}, wait=0.5))
        assert time.monotonic() - started < 10
    finally:
        fake.stop()


def test_error_status_is_an_api_error(daemon: Daemon) -> None:
    with pytest.raises(GatehouseApiError) as err:
        Gatehouse(daemon.url, "0" * 64).check("get_weather", {})
    assert err.value.status == 401 and err.value.code == "unauthorized"
    with pytest.raises(GatehouseApiError) as err:
        client(daemon).check("get_weather", {}, session_id="s" * 600)
    assert err.value.status == 400 and err.value.field == "session_id"


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_reattach_after_a_dropped_connection(daemon: Daemon, flavour: str) -> None:
    proxy = DroppingProxy(daemon.port, drops=1, after=0.3)
    session = f"sess-reattach-{flavour}"
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        # The person decides only once the first connection was cut, mid-wait.
        person = daemon.decide_when_pending("approve", session=session, after=proxy.cut)
        if flavour == "sync":
            decision = Gatehouse(url, daemon.agent_token, session_id=session).check(
                "send_parcel", {"to": "Porto"}, tool_use_id="call-drop-1")
        else:
            decision = asyncio.run(AsyncGatehouse(url, daemon.agent_token, session_id=session).check(
                "send_parcel", {"to": "Porto"}, tool_use_id="call-drop-1"))
        person.join()
        assert proxy.dropped == 1 and proxy.cut.is_set()
        assert decision.allowed and decision.decided_by == "human"
        recorded = [a for a in daemon.actions() if a["session_id"] == session]
        assert len(recorded) == 1, "the re-sent check attached to the same action"
    finally:
        proxy.stop()


def test_async_client_allow_reject_pause(daemon: Daemon) -> None:
    async def scenario() -> None:
        gate = AsyncGatehouse(daemon.url, daemon.agent_token, poll_wait=1.0)
        assert (await gate.check("add", {"a": 1})).allowed
        with pytest.raises(ActionRejected) as err:
            await gate.require("delete_all", {})
        assert err.value.reason == "deleting files is not allowed here"
        person = daemon.decide_when_pending("approve", tool="send_async")
        decision = await gate.check("send_async", {"x": 1})
        person.join()
        assert decision.allowed and decision.decided_by == "human"

    asyncio.run(scenario())


def test_unix_socket_hardened_mode() -> None:
    d = Daemon(socket_path=True)
    try:
        gate = Gatehouse(f"unix:{d.socket}", token="")
        assert gate.check("get_weather", {}).allowed
        assert gate.check("delete_x", {}).verdict == "reject"
        assert asyncio.run(AsyncGatehouse(f"unix:{d.socket}", token="").check("add", {})).allowed
    finally:
        d.stop()


def test_configuration_order(daemon: Daemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Nothing configured and no token file: a clear error, never a check without credentials.
    with pytest.raises(GatehouseConfigError, match="agent.token"):
        Gatehouse()
    # The data directory's agent.token, found like the CLI finds it.
    monkeypatch.setenv("GATEHOUSE_URL", daemon.url)
    monkeypatch.setenv("XDG_DATA_HOME", str(daemon.dir))
    (daemon.dir / "gatehouse").mkdir(exist_ok=True)
    (daemon.dir / "gatehouse" / "agent.token").write_text(daemon.agent_token + "\n")
    assert Gatehouse().check("add", {}).allowed
    monkeypatch.setenv("GATEHOUSE_DATA_DIR", str(daemon.data))
    assert Gatehouse().check("add", {}).allowed
    # GATEHOUSE_TOKEN beats the file; an argument beats both.
    monkeypatch.setenv("GATEHOUSE_TOKEN", "f" * 64)
    with pytest.raises(GatehouseApiError):
        Gatehouse().check("add", {})
    assert Gatehouse(token=daemon.agent_token).check("add", {}).allowed
    monkeypatch.setenv("GATEHOUSE_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(GatehouseUnavailable):
        Gatehouse(token=daemon.agent_token).check("add", {})
    assert Gatehouse(daemon.url, daemon.agent_token).check("add", {}).allowed
    for bad in ("https://127.0.0.1:7400", "http://u:p@127.0.0.1:7400", "unix:", "http://127.0.0.1:7400/?x=1"):
        with pytest.raises(GatehouseConfigError):
            Gatehouse(bad, "t")
    assert os.environ["GATEHOUSE_TOKEN"] == "f" * 64


def test_guarded_sync_and_async(daemon: Daemon) -> None:
    gate = client(daemon)
    ran: list[str] = []

    @guarded(tool="guarded_add", client=gate)
    def add(a: int, b: int = 2) -> int:
        ran.append("add")
        return a + b

    @guarded(client=gate)
    def delete_everything(path: str) -> None:
        ran.append("delete")

    assert add(1) == 3
    with pytest.raises(ActionRejected) as err:
        delete_everything("/")
    assert err.value.reason == "deleting files is not allowed here"

    agate = AsyncGatehouse(daemon.url, daemon.agent_token)

    @guarded(tool="guarded_async_add", client=agate)
    async def add_async(a: int) -> int:
        ran.append("add_async")
        return a + 1

    @guarded(tool="delete_async", client=agate)
    async def delete_async() -> None:
        ran.append("delete_async")

    assert asyncio.run(add_async(41)) == 42
    with pytest.raises(ActionRejected):
        asyncio.run(delete_async())
    assert ran == ["add", "add_async"]

    down = Gatehouse(f"http://127.0.0.1:{free_port()}", "t")

    @guarded(tool="guarded_add", client=down)
    def never() -> None:
        ran.append("never")

    with pytest.raises(GatehouseUnavailable):
        never()
    assert "never" not in ran


def test_async_response_parsing() -> None:
    """The asyncio transport reads responses itself: Content-Length, chunked, truncated, junk."""
    from gatehouse._transport import Interrupted, _read_response

    async def read(raw: bytes) -> tuple[int, bytes, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader)

    body = b'{"verdict":"allow"}'
    fixed = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n" + body
    assert asyncio.run(read(fixed)) == (200, body, True)
    closing = fixed.replace(b"Content-Type", b"Connection: close\r\nContent-Type")
    assert asyncio.run(read(closing)) == (200, body, False)
    chunked = (b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + body[:5]
               + b"\r\ne\r\n" + body[5:] + b"\r\n0\r\n\r\n")
    assert asyncio.run(read(chunked)) == (403, body, True)
    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(read(fixed[:-3]))
    with pytest.raises(Interrupted):
        asyncio.run(read(b""))
    with pytest.raises(GatehouseUnavailable):
        asyncio.run(read(b"SSH-2.0-OpenSSH\r\n\r\n"))
