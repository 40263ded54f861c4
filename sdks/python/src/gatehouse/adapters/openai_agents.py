"""Gatehouse for the OpenAI Agents SDK (`openai-agents`): guard every tool of an agent in one line.

    gate = AsyncGatehouse(session_id=conversation_id)
    agent = guard_agent(Agent(name="ops", tools=[send_email, get_weather]), gate)
    result = await Runner.run(agent, "...")
    while result.interruptions:                      # paused by Gatehouse: a person decides
        state = await apply_gatehouse_decisions(result.to_state(), gate)
        result = await Runner.run(agent, state)

How each tool call is decided, in the SDK's own terms:

* `needs_approval` asks Gatehouse without waiting: `allow` and `reject` need no approval, `pending`
  (a pause) does, so the run stops with the call in `result.interruptions`. The run state can be
  serialized (`state.to_string()`) and resumed later, in another process too.
* `apply_gatehouse_decisions` waits (long poll) for the person's decision in the Gatehouse
  dashboard or CLI, and approves or rejects each interruption with it; the model receives a
  rejection's reason.
* A tool input guardrail is the last word before the tool runs: it asks Gatehouse again (the same
  `session_id` + `tool_use_id` re-attach to the same action, so nothing is recorded twice) and
  runs the tool only on `allow`. A reject becomes the guardrail's `reject_content` (the model
  gets the reason); an approval granted in the app but not in Gatehouse waits for Gatehouse;
  no answer raises `GatehouseUnavailable` out of `Runner.run`, and the tool does not run.

Tools from MCP servers (`agent.mcp_servers`) are checked as `mcp__<server>__<tool>` by a guardrail
on each server; a paused MCP call waits in that guardrail for the decision.

The `session_id` is the client's (`AsyncGatehouse(session_id=...)`): give it a stable value (your
conversation id) when a run may resume in another process, so the re-sent checks re-attach.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper, RunState
from agents.tool_guardrails import (
    ToolGuardrailFunctionOutput,
    ToolInputGuardrail,
    ToolInputGuardrailData,
)

from .._client import AsyncGatehouse
from .._errors import GatehouseUnavailable
from .._mcp import mcp_tool_name

__all__ = ["apply_gatehouse_decisions", "gatehouse_guardrail", "guard_agent", "guard_tool"]

_GUARDRAIL = "gatehouse"


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"_arguments": value}


def gatehouse_guardrail(gate: AsyncGatehouse, name_of: Callable[[str], str] = str) -> ToolInputGuardrail[Any]:
    """A tool input guardrail that runs the tool only when Gatehouse allows it (waiting through a
    pause). `name_of` maps the SDK's tool name to the one the policy sees."""

    async def gatehouse(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        ctx = data.context
        decision = await gate.check(
            name_of(ctx.tool_name), _arguments(ctx.tool_arguments), tool_use_id=ctx.tool_call_id
        )
        if decision.allowed:
            return ToolGuardrailFunctionOutput.allow(output_info=decision)
        return ToolGuardrailFunctionOutput.reject_content(
            f"Gatehouse rejected this tool call: {decision.reason}", output_info=decision
        )

    return ToolInputGuardrail(guardrail_function=gatehouse, name=_GUARDRAIL)


def guard_tool(tool: FunctionTool, gate: AsyncGatehouse) -> FunctionTool:
    """A copy of `tool` that Gatehouse guards (see the module docs); the original is unchanged."""
    policy_name = tool.name

    async def needs_approval(_ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
        decision = await gate.check(policy_name, params, tool_use_id=call_id, wait=False)
        return decision.pending

    guarded = copy.copy(tool)
    guarded.needs_approval = needs_approval
    others = [g for g in (tool.tool_input_guardrails or []) if g.name != _GUARDRAIL]
    guarded.tool_input_guardrails = [*others, gatehouse_guardrail(gate, lambda _: policy_name)]
    return guarded


def guard_agent(agent: Agent[Any], gate: AsyncGatehouse, *, handoffs: bool = True) -> Agent[Any]:
    """A copy of `agent` (and of the agents it hands off to) whose function tools Gatehouse guards.
    The tools of its MCP servers are guarded too, as `mcp__<server>__<tool>`: the servers
    themselves get the guardrail (they are shared, not copied), replacing an earlier one."""
    copies: dict[int, Agent[Any]] = {}

    def visit(a: Agent[Any]) -> Agent[Any]:
        if id(a) in copies:
            return copies[id(a)]
        tools = [guard_tool(t, gate) if isinstance(t, FunctionTool) else t for t in a.tools]
        clone = a.clone(tools=tools)
        copies[id(a)] = clone
        for server in a.mcp_servers:
            guardrail = gatehouse_guardrail(gate, functools.partial(mcp_tool_name, server.name))
            others = [g for g in (server.tool_input_guardrails or []) if g.name != _GUARDRAIL]
            server.tool_input_guardrails = [*others, guardrail]
        if handoffs:
            clone.handoffs = [visit(h) if isinstance(h, Agent) else h for h in a.handoffs]
        return clone

    return visit(agent)


async def apply_gatehouse_decisions(state: RunState[Any], gate: AsyncGatehouse) -> RunState[Any]:
    """Waits for Gatehouse's decision on each interruption of `state` (a person approving or denying
    in the dashboard or CLI, or the deadline) and records it in the state: approve on `allow`,
    reject with the reason otherwise. Resume with `Runner.run(agent, state)`.

    Raises `GatehouseUnavailable` (leaving the state undecided) if no decision can be had."""
    for item in state.get_interruptions():
        raw = item.raw_item
        call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
        arguments = raw.get("arguments") if isinstance(raw, dict) else getattr(raw, "arguments", None)
        if not isinstance(call_id, str) or item.tool_name is None:
            raise GatehouseUnavailable(f"interruption without a tool call id: {item!r:.200}")
        decision = await gate.check(item.tool_name, _arguments(arguments or "{}"), tool_use_id=call_id)
        if decision.allowed:
            state.approve(item)
        else:
            state.reject(item, rejection_message=f"Gatehouse rejected this tool call: {decision.reason}")
    return state

