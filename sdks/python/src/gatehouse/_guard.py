"""`@guarded(tool=...)`: a function (sync or async) that runs only after Gatehouse allows the call."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from ._client import AsyncGatehouse, Gatehouse
from ._errors import ActionRejected

F = TypeVar("F", bound=Callable[..., Any])


class Guard(Protocol):
    """What `guarded(...)` returns: a decorator that keeps the function's type."""

    def __call__(self, func: F, /) -> F: ...

_default_sync: Gatehouse | None = None
_default_async: AsyncGatehouse | None = None


def _sync_client() -> Gatehouse:
    global _default_sync
    if _default_sync is None:
        _default_sync = Gatehouse()
    return _default_sync


def _async_client() -> AsyncGatehouse:
    global _default_async
    if _default_async is None:
        _default_async = AsyncGatehouse()
    return _default_async


def call_input(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name (what the policy's `args` pointers see)."""
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": dict(kwargs)}
    bound.apply_defaults()
    return dict(bound.arguments)


def edited_call(
    func: Callable[..., Any], updated: dict[str, Any], action_id: str
) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments that call `func` with a person's edited input (the
    call's arguments by parameter name, as `call_input` gave them, edited). An edit that names
    no parameter of `func` is refused: the call does not run."""
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):
        parameters = {}
    unknown = set(updated) - set(parameters)
    if not parameters or unknown:
        raise ActionRejected(
            f"a person approved an edited input this function cannot take (unknown: {sorted(unknown)})",
            action_id,
            "human",
        )
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = True
    for name, param in parameters.items():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(updated.get(name, ()))
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(updated.get(name, {}))
        elif name not in updated:
            positional = False
        elif param.kind is inspect.Parameter.KEYWORD_ONLY or not positional:
            kwargs[name] = updated[name]
        else:
            args.append(updated[name])
    return args, kwargs


def guarded(
    tool: str | None = None,
    *,
    client: Gatehouse | AsyncGatehouse | None = None,
    cwd: str | None = None,
) -> Guard:
    """Decorates a function so that each call is checked first: it runs only on `allow`; a reject
    raises `ActionRejected` (with the reason, action id and the person's note); an approval of
    an edited input runs the function with the edited arguments; no answer raises
    `GatehouseUnavailable`. The check's input is the call's arguments by parameter name.

    `client` is a `Gatehouse` for plain functions and an `AsyncGatehouse` for coroutine
    functions; by default one of each is made from the environment on first use.
    """

    def decorate(func: F) -> F:
        name = tool or func.__name__
        if inspect.iscoroutinefunction(func):
            if client is not None and not isinstance(client, AsyncGatehouse):
                raise TypeError("an async function needs an AsyncGatehouse client")

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                gate = client if isinstance(client, AsyncGatehouse) else _async_client()
                decision = await gate.require(name, call_input(func, args, kwargs), cwd=cwd, accept_edits=True)
                if decision.updated_input is not None:
                    edited_args, edited_kwargs = edited_call(func, decision.updated_input, decision.action_id)
                    return await cast(Callable[..., Awaitable[Any]], func)(*edited_args, **edited_kwargs)
                return await cast(Callable[..., Awaitable[Any]], func)(*args, **kwargs)

            return cast(F, run_async)

        if client is not None and not isinstance(client, Gatehouse):
            raise TypeError("a plain function needs a Gatehouse client (AsyncGatehouse is for async functions)")

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            gate = client if isinstance(client, Gatehouse) else _sync_client()
            decision = gate.require(name, call_input(func, args, kwargs), cwd=cwd, accept_edits=True)
            if decision.updated_input is not None:
                edited_args, edited_kwargs = edited_call(func, decision.updated_input, decision.action_id)
                return func(*edited_args, **edited_kwargs)
            return func(*args, **kwargs)

        return cast(F, run)

    return decorate
