"""A person's decision as the SDK hands it on: a denial's note (`ActionRejected.note`), and an
approval of an edited input (`Decision.updated_input`), which only a caller that takes it runs."""

from __future__ import annotations

import asyncio

import pytest
from daemon import Daemon

from gatehouse import ActionRejected, AsyncGatehouse, Gatehouse, guarded


def client(d: Daemon, session: str) -> Gatehouse:
    return Gatehouse(d.url, d.agent_token, poll_wait=1.0, session_id=session)


def test_a_denial_note_reaches_action_rejected(daemon: Daemon) -> None:
    person = daemon.decide_when_pending("deny", tool="send_invoice", note="use the draft folder", session="py-note")
    with pytest.raises(ActionRejected) as err:
        client(daemon, "py-note").require("send_invoice", {"to": "a@example.com"})
    person.join()
    assert err.value.note == "use the draft folder"
    assert err.value.decided_by == "human"
    assert "use the draft folder" in str(err.value)


def test_an_edited_approval_is_never_run_as_asked(daemon: Daemon) -> None:
    edited = {"to": "team@example.com"}
    person = daemon.decide_when_pending("approve", tool="send_digest", session="py-edit", edited=edited)
    decision = client(daemon, "py-edit").check("send_digest", {"to": "everyone@example.com"})
    person.join()
    assert decision.verdict == "allow" and decision.edited and not decision.allowed
    assert decision.updated_input == edited
    # require() refuses it unless the caller says it runs the edited input.
    gate = client(daemon, "py-edit")
    with pytest.raises(ActionRejected) as err:
        gate.require("send_digest", {"to": "everyone@example.com"}, tool_use_id=_tool_use_id(daemon, "send_digest"))
    assert "team@example.com" in err.value.reason
    taken = gate.require("send_digest", {"to": "everyone@example.com"}, accept_edits=True,
                         tool_use_id=_tool_use_id(daemon, "send_digest"))
    assert taken.updated_input == edited


def _tool_use_id(daemon: Daemon, tool: str) -> str:
    """The decided action's tool_use_id: a re-sent check re-attaches to it."""
    for action in daemon.actions():
        if action["tool"] == tool:
            return str(action["tool_use_id"])
    raise AssertionError(f"no {tool} action")


def test_guarded_functions_run_with_the_edited_arguments(daemon: Daemon) -> None:
    sent: list[tuple[str, int]] = []

    @guarded(tool="send_report", client=client(daemon, "py-guard"))
    def send_report(to: str, copies: int = 1) -> str:
        sent.append((to, copies))
        return to

    person = daemon.decide_when_pending("approve", tool="send_report", session="py-guard",
                                        edited={"to": "me@example.com", "copies": 1})
    assert send_report("all@example.com", copies=40) == "me@example.com"
    person.join()
    assert sent == [("me@example.com", 1)]

    @guarded(tool="send_report_async", client=AsyncGatehouse(daemon.url, daemon.agent_token, poll_wait=1.0,
                                                              session_id="py-guard-async"))
    async def send_report_async(to: str) -> str:
        return to

    person = daemon.decide_when_pending("approve", tool="send_report_async", session="py-guard-async",
                                        edited={"unknown": "x"})
    with pytest.raises(ActionRejected) as err:
        asyncio.run(send_report_async("all@example.com"))
    person.join()
    assert "cannot take" in err.value.reason
