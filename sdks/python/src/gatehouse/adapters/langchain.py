"""Gatehouse for LangChain 1.x agents (`create_agent`, on LangGraph): a middleware in the shape of
`HumanInTheLoopMiddleware` whose decisions come from Gatehouse instead of the app.

    agent = create_agent(model, tools=[send_email, get_weather],
                         middleware=[GatehouseMiddleware(Gatehouse())],
                         checkpointer=InMemorySaver())

Every tool call (or those named in `tools=`) is checked before it runs; the mapping to the
human-in-the-loop decisions is:

* `allow` (a rule, or a person approving a pause) → **approve**: the tool runs as the model asked.
* `reject` (a rule, a person denying, the deadline) → **reject**: the tool does not run, and the
  model gets a `ToolMessage` (status `error`) carrying Gatehouse's reason.
* **edit** does not exist here: a Gatehouse approval is bound to the exact action (its hash), so
  a changed call is a new action that needs its own decision.
* no answer (daemon down, hanging, garbage) → `GatehouseUnavailable` is raised out of the agent
  and the tool does not run.

A pause either waits in the tool call for the person's decision (`on_pause="wait"`, the default,
a long poll), or (`on_pause="interrupt"`) becomes a LangGraph `interrupt` like the per-call
human-in-the-loop one, whose value describes the paused action; resume with
`Command(resume=...)` once the person decided in the dashboard or CLI: the middleware asks
Gatehouse again (the same `session_id` + `tool_use_id` re-attach) and follows its decision,
whatever the resume value says.

The session is the LangGraph `thread_id` when there is one (so a resumed thread re-attaches), else
the client's. Tools an app loads from MCP servers are checked as `mcp__<server>__<tool>`: pass
`tool_names=mcp_names("server", tools)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

from langchain.agents.middleware.types import AgentMiddleware, ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command, interrupt

from .._client import AsyncGatehouse, Gatehouse
from .._mcp import mcp_tool_name
from .._types import Decision

__all__ = ["GatehouseMiddleware", "mcp_names"]

OnPause = Literal["wait", "interrupt"]


def mcp_names(server: str, tools: Iterable[Any]) -> dict[str, str]:
    """`{tool.name: "mcp__<server>__<tool.name>"}` for tools loaded from the MCP server `server`."""
    return {t.name: mcp_tool_name(server, t.name) for t in tools}


class GatehouseMiddleware(AgentMiddleware):
    """Checks each tool call with Gatehouse before it runs (see the module docs).

    `gate` is a `Gatehouse` (used by `invoke`, and by `ainvoke` in a worker thread) or an
    `AsyncGatehouse` (for `ainvoke` only). `tools` limits the check to those tool names (default:
    every tool). `tool_names` maps a tool's name to the one the policy sees."""

    def __init__(
        self,
        gate: Gatehouse | AsyncGatehouse,
        *,
        tools: Iterable[str] | None = None,
        tool_names: Mapping[str, str] | None = None,
        on_pause: OnPause = "wait",
    ) -> None:
        super().__init__()
        if on_pause not in ("wait", "interrupt"):
            raise ValueError(f"on_pause must be 'wait' or 'interrupt', got {on_pause!r}")
        self.gate = gate
        self.only = None if tools is None else frozenset(tools)
        self.tool_names = dict(tool_names or {})
        self.on_pause = on_pause

    def _applies(self, request: ToolCallRequest) -> bool:
        return self.only is None or request.tool_call["name"] in self.only

    def _check_args(self, request: ToolCallRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
        call = request.tool_call
        name = self.tool_names.get(call["name"], call["name"])
        kwargs: dict[str, Any] = {"tool_use_id": call.get("id") or None}
        session = _thread_id(request)
        if session is not None:
            kwargs["session_id"] = session
        return name, dict(call.get("args") or {}), kwargs

    def _interrupt_value(self, request: ToolCallRequest, pending: Decision) -> dict[str, Any]:
        call = request.tool_call
        return {
            "type": "gatehouse_pause",
            "tool_call_id": call.get("id"),
            "name": call["name"],
            "args": call.get("args"),
            "action_id": pending.action_id,
            "description": f"Paused by Gatehouse: {pending.reason}. Decide it in the Gatehouse dashboard or "
            f"with `gatehouse approve {pending.action_id}`, then resume.",
        }

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        if not self._applies(request):
            return handler(request)
        if not isinstance(self.gate, Gatehouse):
            raise TypeError("GatehouseMiddleware with an AsyncGatehouse needs ainvoke/astream")
        name, args, kwargs = self._check_args(request)
        if self.on_pause == "interrupt":
            first = self.gate.check(name, args, wait=False, **kwargs)
            if first.pending:
                interrupt(self._interrupt_value(request, first))
        decision = self.gate.check(name, args, **kwargs)
        return handler(request) if decision.allowed else _rejection(request, decision)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        if not self._applies(request):
            return await handler(request)
        name, args, kwargs = self._check_args(request)
        if self.on_pause == "interrupt":
            first = await self._acheck(name, args, wait=False, **kwargs)
            if first.pending:
                interrupt(self._interrupt_value(request, first))
        decision = await self._acheck(name, args, **kwargs)
        return await handler(request) if decision.allowed else _rejection(request, decision)

    async def _acheck(self, name: str, args: dict[str, Any], **kwargs: Any) -> Decision:
        if isinstance(self.gate, AsyncGatehouse):
            return await self.gate.check(name, args, **kwargs)
        return await asyncio.to_thread(self.gate.check, name, args, **kwargs)


def _thread_id(request: ToolCallRequest) -> str | None:
    runtime = getattr(request, "runtime", None)
    config = getattr(runtime, "config", None) or {}
    thread = (config.get("configurable") or {}).get("thread_id")
    return str(thread) if thread is not None else None


def _rejection(request: ToolCallRequest, decision: Decision) -> ToolMessage:
    call = request.tool_call
    return ToolMessage(
        content=f"Gatehouse rejected this tool call: {decision.reason}",
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error",
    )
