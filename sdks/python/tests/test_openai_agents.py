"""The OpenAI Agents SDK adapter with the real `openai-agents` package and the real daemon.

The model is the SDK's own `agents.testing.ScriptedModel` (a scripted fake: no model API is
reachable here); everything else — the runner, tools, approvals, run state, guardrails, and a real
MCP server over stdio — is the real SDK."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunState, Runner, function_tool
from agents.mcp import MCPServerStdio
from agents.testing import ScriptedModel, assistant_message, function_call
from daemon import Daemon, free_port

from gatehouse import AsyncGatehouse, GatehouseUnavailable
from gatehouse.adapters.openai_agents import apply_gatehouse_decisions, guard_agent

ran: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    ran.append(f"get_weather:{city}")
    return f"sunny in {city}"


@function_tool
def delete_file(path: str) -> str:
    """Deletes a file."""
    ran.append(f"delete_file:{path}")
    return "deleted"


@function_tool
def send_email(to: str) -> str:
    """Sends an email."""
    ran.append(f"send_email:{to}")
    return "sent"


def agent_for(model: ScriptedModel, **kwargs: Any) -> Agent[Any]:
    return Agent(name="ops", instructions="help", model=model,
                 tools=[get_weather, delete_file, send_email], **kwargs)


def tool_outputs(model: ScriptedModel) -> list[str]:
    """What the model was told about tool calls, in its later turns."""
    outputs = []
    for call in model.calls:
        for item in call.input if isinstance(call.input, list) else []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                outputs.append(str(item.get("output")))
    return outputs


@pytest.fixture(autouse=True)
def reset() -> None:
    ran.clear()


def caused_by_gatehouse(err: BaseException) -> bool:
    """The SDK wraps a guardrail's exception in its own (`UserError: Error running tool ...`)."""
    while err is not None:
        if isinstance(err, GatehouseUnavailable):
            return True
        err = err.__cause__  # type: ignore[assignment]
    return False


def gate_for(d: Daemon, session: str) -> AsyncGatehouse:
    return AsyncGatehouse(d.url, d.agent_token, session_id=session, poll_wait=1.0)


def test_allowed_tool_runs(daemon: Daemon) -> None:
    model = ScriptedModel([[function_call("get_weather", {"city": "Lisbon"}, call_id="call_w1")],
                           [assistant_message("It is sunny.")]])
    agent = guard_agent(agent_for(model), gate_for(daemon, "oa-allow"))
    result = asyncio.run(Runner.run(agent, "weather?"))
    assert result.final_output == "It is sunny."
    assert ran == ["get_weather:Lisbon"]
    assert tool_outputs(model) == ["sunny in Lisbon"]


def test_rejected_tool_does_not_run_and_the_model_gets_the_reason(daemon: Daemon) -> None:
    model = ScriptedModel([[function_call("delete_file", {"path": "/etc/passwd"}, call_id="call_d1")],
                           [assistant_message("I may not.")]])
    agent = guard_agent(agent_for(model), gate_for(daemon, "oa-reject"))
    result = asyncio.run(Runner.run(agent, "delete it"))
    assert result.final_output == "I may not."
    assert ran == []
    [told] = tool_outputs(model)
    assert "deleting files is not allowed here" in told


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_paused_tool_is_an_interruption_resumed_from_serialized_state(daemon: Daemon, decision: str) -> None:
    session = f"oa-pause-{decision}"
    model = ScriptedModel([[function_call("send_email", {"to": "boss@example.com"}, call_id=f"call_s_{decision}")],
                           [assistant_message("Done.")]])
    agent = guard_agent(agent_for(model), gate_for(daemon, session))
    first = asyncio.run(Runner.run(agent, "email the boss"))
    assert [i.tool_name for i in first.interruptions] == ["send_email"]
    assert ran == [], "a paused call does not run before the decision"
    saved = first.to_state().to_string()

    # Later (another process would do the same): a person decides in Gatehouse, the run resumes.
    person = daemon.decide_when_pending(decision, tool_use_id=f"call_s_{decision}", note="checked")

    async def resume() -> Any:
        gate = gate_for(daemon, session)
        resumed_agent = guard_agent(agent_for(model), gate)
        state = await RunState.from_string(resumed_agent, saved)
        state = await apply_gatehouse_decisions(state, gate)
        return await Runner.run(resumed_agent, state)

    result = asyncio.run(resume())
    person.join()
    assert result.final_output == "Done."
    if decision == "approve":
        assert ran == ["send_email:boss@example.com"]
    else:
        assert ran == []
        assert any("denied" in out and "checked" in out for out in tool_outputs(model))
    recorded = [a for a in daemon.actions() if a["session_id"] == session]
    assert len(recorded) == 1, "every check of the call re-attached to one action"


def test_approving_in_the_app_alone_does_not_run_the_tool(daemon: Daemon) -> None:
    """Only Gatehouse decides: an approval given in the app still waits for the person there."""
    model = ScriptedModel([[function_call("send_email", {"to": "x@example.com"}, call_id="call_app_only")],
                           [assistant_message("Done.")]])
    gate = AsyncGatehouse(daemon.url, daemon.agent_token, session_id="oa-app-only", timeout=1.0, poll_wait=0.2)
    agent = guard_agent(agent_for(model), gate)
    first = asyncio.run(Runner.run(agent, "email"))
    state = first.to_state()
    for item in state.get_interruptions():
        state.approve(item)
    with pytest.raises(Exception) as err:
        asyncio.run(Runner.run(agent, state))
    assert caused_by_gatehouse(err.value), err.value
    assert ran == []


def test_daemon_down_the_tool_does_not_run() -> None:
    model = ScriptedModel([[function_call("get_weather", {"city": "Oslo"}, call_id="call_down")],
                           [assistant_message("?")]])
    agent = guard_agent(agent_for(model), AsyncGatehouse(f"http://127.0.0.1:{free_port()}", "t"))
    with pytest.raises(Exception) as err:
        asyncio.run(Runner.run(agent, "weather?"))
    assert caused_by_gatehouse(err.value), err.value
    assert ran == []


MCP_SERVER = '''
import sys
from mcp.server.mcpserver import MCPServer
app = MCPServer("files")
@app.tool()
def read_file(path: str) -> str:
    """Reads a file."""
    print(f"read_file:{path}", file=sys.stderr, flush=True)
    return "contents of " + path
@app.tool()
def delete_file(path: str) -> str:
    """Deletes a file."""
    open(sys.argv[1], "a").write(path + "\\n")
    return "deleted " + path
app.run("stdio")
'''


def test_mcp_tools_are_checked_as_mcp_server_tool(daemon: Daemon, tmp_path: Path) -> None:
    script = tmp_path / "files_server.py"
    script.write_text(MCP_SERVER)
    deleted = tmp_path / "deleted.txt"
    model = ScriptedModel([
        [function_call("read_file", {"path": "notes.txt"}, call_id="call_m1"),
         function_call("delete_file", {"path": "notes.txt"}, call_id="call_m2")],
        [assistant_message("Read it; could not delete it.")],
    ])

    async def run() -> Any:
        server = MCPServerStdio(name="files", params={"command": sys.executable, "args": [str(script), str(deleted)]})
        async with server:
            agent = guard_agent(Agent(name="mcp", model=model, mcp_servers=[server]), gate_for(daemon, "oa-mcp"))
            return await Runner.run(agent, "read then delete notes.txt")

    result = asyncio.run(run())
    assert result.final_output == "Read it; could not delete it."
    assert not deleted.exists(), "the rejected MCP call did not reach the server"
    outputs = tool_outputs(model)
    assert any("contents of notes.txt" in o for o in outputs)
    assert any("deleting files is not allowed here" in o for o in outputs)
    tools = sorted(a["tool"] for a in daemon.actions() if a["session_id"] == "oa-mcp")
    assert tools == ["mcp__files__delete_file", "mcp__files__read_file"]
    json.dumps(tools)
