"""The LangChain 1.x middleware with the real `langchain` + `langgraph` packages and the real daemon.

The chat model is a scripted fake (`langchain_core`'s `GenericFakeChatModel`, taught to accept
tools): no model API is reachable here. The agent loop, tool node, middleware chain, checkpointer
and interrupts are the real LangChain/LangGraph."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from daemon import Daemon, free_port
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from gatehouse import AsyncGatehouse, Gatehouse, GatehouseUnavailable
from gatehouse.adapters.langchain import GatehouseMiddleware, mcp_names

ran: list[str] = []


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    ran.append(f"get_weather:{city}")
    return f"sunny in {city}"


@tool
def delete_file(path: str) -> str:
    """Deletes a file."""
    ran.append(f"delete_file:{path}")
    return "deleted"


@tool
def send_email(to: str) -> str:
    """Sends an email."""
    ran.append(f"send_email:{to}")
    return "sent"


@tool
def read_file(path: str) -> str:
    """Reads a file (as an MCP server's tool would be loaded)."""
    ran.append(f"read_file:{path}")
    return "contents"


class ScriptedChat(GenericFakeChatModel):
    """A scripted fake chat model that accepts tools (the agent binds them)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChat:
        return self


def model(*turns: AIMessage) -> ScriptedChat:
    return ScriptedChat(messages=iter(turns))


def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    ran.clear()
    yield


def agent_with(d: Daemon, chat: ScriptedChat, **kwargs: Any) -> Any:
    gate = Gatehouse(d.url, d.agent_token, poll_wait=1.0)
    return create_agent(chat, tools=[get_weather, delete_file, send_email, read_file],
                        middleware=[GatehouseMiddleware(gate, **kwargs)], checkpointer=InMemorySaver())


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def test_allowed_tool_runs(daemon: Daemon) -> None:
    agent = agent_with(daemon, model(call("get_weather", {"city": "Lisbon"}, "lc_w1"), AIMessage("Sunny.")))
    result = agent.invoke({"messages": [{"role": "user", "content": "weather?"}]}, thread("lc-allow"))
    assert ran == ["get_weather:Lisbon"]
    assert [m.content for m in tool_messages(result)] == ["sunny in Lisbon"]
    assert result["messages"][-1].content == "Sunny."


def test_rejected_tool_does_not_run_and_the_model_gets_the_reason(daemon: Daemon) -> None:
    agent = agent_with(daemon, model(call("delete_file", {"path": "/etc"}, "lc_d1"), AIMessage("Cannot.")))
    result = agent.invoke({"messages": [{"role": "user", "content": "delete"}]}, thread("lc-reject"))
    assert ran == []
    [message] = tool_messages(result)
    assert message.status == "error" and "deleting files is not allowed here" in str(message.content)


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_paused_tool_waits_for_the_person(daemon: Daemon, decision: str) -> None:
    agent = agent_with(daemon, model(call("send_email", {"to": "boss@example.com"}, f"lc_s_{decision}"), AIMessage("Ok.")))
    person = daemon.decide_when_pending(decision, tool_use_id=f"lc_s_{decision}", note="reviewed")
    result = agent.invoke({"messages": [{"role": "user", "content": "email"}]}, thread(f"lc-wait-{decision}"))
    person.join()
    if decision == "approve":
        assert ran == ["send_email:boss@example.com"]
    else:
        assert ran == []
        assert "reviewed" in str(tool_messages(result)[0].content)


def test_paused_tool_as_an_interrupt_resumed_after_the_decision(daemon: Daemon) -> None:
    agent = agent_with(daemon, model(call("send_email", {"to": "cto@example.com"}, "lc_int_1"), AIMessage("Sent.")),
                       on_pause="interrupt")
    config = thread("lc-interrupt")
    first = agent.invoke({"messages": [{"role": "user", "content": "email"}]}, config, version="v2")
    [paused] = first.interrupts
    assert paused.value["type"] == "gatehouse_pause" and paused.value["name"] == "send_email"
    assert ran == []
    # The app says "approve", but only Gatehouse decides: nothing runs until the person does.
    pending = daemon.pending_for(tool_use_id="lc_int_1")
    assert pending is not None and pending["action_id"] == paused.value["action_id"]
    assert pending["session_id"] == "lc-interrupt" and pending["tool_use_id"] == "lc_int_1"
    daemon.decide(pending, "approve")
    result = agent.invoke(Command(resume={"type": "approve"}), config, version="v2")
    assert ran == ["send_email:cto@example.com"]
    assert result.value["messages"][-1].content == "Sent."
    assert len([a for a in daemon.actions() if a["session_id"] == "lc-interrupt"]) == 1


def test_daemon_down_the_tool_does_not_run() -> None:
    gate = Gatehouse(f"http://127.0.0.1:{free_port()}", "t")
    agent = create_agent(model(call("get_weather", {"city": "Oslo"}, "lc_down"), AIMessage("?")),
                         tools=[get_weather], middleware=[GatehouseMiddleware(gate)])
    with pytest.raises(GatehouseUnavailable):
        agent.invoke({"messages": [{"role": "user", "content": "weather?"}]})
    assert ran == []


def test_async_agent_and_mcp_tool_names(daemon: Daemon) -> None:
    gate = AsyncGatehouse(daemon.url, daemon.agent_token)
    chat = model(AIMessage(content="", tool_calls=[
        {"name": "read_file", "args": {"path": "a"}, "id": "lc_m1", "type": "tool_call"},
        {"name": "delete_file", "args": {"path": "a"}, "id": "lc_m2", "type": "tool_call"},
    ]), AIMessage("Done."))
    names = mcp_names("files", [read_file, delete_file])
    agent = create_agent(chat, tools=[read_file, delete_file],
                         middleware=[GatehouseMiddleware(gate, tool_names=names)])
    inputs: Any = {"messages": [{"role": "user", "content": "go"}]}
    result = asyncio.run(agent.ainvoke(inputs, thread("lc-mcp")))
    assert ran == ["read_file:a"]
    statuses = {m.name: m.status for m in tool_messages(result)}
    assert statuses == {"read_file": "success", "delete_file": "error"}
    tools = sorted(a["tool"] for a in daemon.actions() if a["session_id"] == "lc-mcp")
    assert tools == ["mcp__files__delete_file", "mcp__files__read_file"]
