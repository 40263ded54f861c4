"""Gatehouse SDK: ask the local Gatehouse daemon before an agent's tool call runs, and fail closed.

    from gatehouse import Gatehouse, guarded

    @guarded(tool="send_email")
    def send_email(to: str, body: str) -> None: ...

Adapters: `gatehouse.adapters.openai_agents` (OpenAI Agents SDK) and `gatehouse.adapters.langchain`
(LangChain 1.x / LangGraph middleware).
"""

from ._client import AsyncGatehouse, Gatehouse, new_tool_use_id
from ._config import DEFAULT_URL, data_dir
from ._errors import (
    ActionRejected,
    GatehouseApiError,
    GatehouseConfigError,
    GatehouseError,
    GatehouseTimeout,
    GatehouseUnavailable,
)
from ._guard import guarded
from ._mcp import is_mcp_tool_name, mcp_tool_name
from ._types import Decision, Tier2Score, Verdict

__all__ = [
    "DEFAULT_URL",
    "ActionRejected",
    "AsyncGatehouse",
    "Decision",
    "Gatehouse",
    "GatehouseApiError",
    "GatehouseConfigError",
    "GatehouseError",
    "GatehouseTimeout",
    "GatehouseUnavailable",
    "Tier2Score",
    "Verdict",
    "data_dir",
    "guarded",
    "is_mcp_tool_name",
    "mcp_tool_name",
    "new_tool_use_id",
]
__version__ = "0.1.0"
