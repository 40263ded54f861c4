"""`Gatehouse` and `AsyncGatehouse`: ask whether a tool call may run, and wait through a pause.

*Invariant*: `check()` fails closed. It returns only a `Decision` the daemon gave (`allow` or
`reject`, or `pending` when asked not to wait); a daemon that is down, hangs past the deadline,
answers an error status or nonsense, and an action still pending at the deadline, all raise.
`require()` also raises `ActionRejected` on a reject, so that only an allow returns.

*Retries*: every check carries a `session_id` and a `tool_use_id` (generated when not given), so
the daemon re-attaches a re-sent check to the same action instead of recording a second one;
after a lost connection the check is re-sent, and polls are retried, a few times with a short
backoff, within the deadline (the same rules as the Rust client, crates/gatehouse-client).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ._config import Endpoint, resolve
from ._errors import ActionRejected, GatehouseError, GatehouseTimeout, GatehouseUnavailable
from ._transport import AsyncTransport, Interrupted, NotSent, SyncTransport, encode_body
from ._types import Decision

DEFAULT_TIMEOUT = 600.0
DEFAULT_POLL_WAIT = 25.0
DEFAULT_REQUEST_TIMEOUT = 65.0
MAX_WAIT = 60.0
LONG_POLL_MARGIN = 5.0
MIN_POLL_INTERVAL = 0.1
MAX_RETRIES = 4
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 1.0


def new_tool_use_id() -> str:
    return "gh_" + uuid.uuid4().hex


class _Plan:
    """The checks' timing, shared by the sync and async clients."""

    def __init__(self, timeout: float, poll_wait: float, request_timeout: float) -> None:
        if timeout <= 0 or poll_wait < 0 or request_timeout <= 0:
            raise ValueError("timeout and request_timeout must be positive, poll_wait not negative")
        self.timeout = timeout
        self.poll_wait = poll_wait
        self.request_timeout = request_timeout

    def attempt(self, wanted: float, left: float) -> tuple[float, float]:
        """The wait to ask for and the time limit of that attempt (see the Rust client)."""
        margin = min(LONG_POLL_MARGIN, self.request_timeout / 2)
        wait = max(0.0, min(wanted, left, MAX_WAIT, self.request_timeout - margin))
        limit = min(wait + margin, self.request_timeout, left)
        return wait, limit


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise GatehouseTimeout("timed out waiting for the gatehouse daemon (the check's deadline passed)")
    return left


def _backoff(retries: int, deadline: float, err: Exception) -> float:
    delay: float = min(FIRST_BACKOFF * 2.0**retries, MAX_BACKOFF)
    if retries >= MAX_RETRIES or time.monotonic() + delay >= deadline:
        raise GatehouseUnavailable(str(err)) from None
    return delay


def _body(
    tool: str,
    input: Mapping[str, Any],
    session_id: str,
    tool_use_id: str,
    cwd: str | None,
    context: Mapping[str, Any] | None,
    agent: str | None,
) -> dict[str, Any]:
    if not isinstance(tool, str) or not tool.strip():
        raise GatehouseError("tool must be a non-blank string")
    if not isinstance(input, Mapping):
        raise GatehouseError("input must be a mapping (the tool's arguments)")
    body: dict[str, Any] = {"tool": tool, "input": dict(input), "session_id": session_id, "tool_use_id": tool_use_id}
    if cwd is not None:
        body["cwd"] = cwd
    if context is not None:
        body["context"] = dict(context)
    if agent is not None:
        body["agent"] = agent
    return body


def _poll_path(action_id: str, wait: float) -> str:
    return f"/v1/actions/{quote(action_id, safe='')}?wait_ms={int(wait * 1000)}"


def _ensure(decision: Decision, accept_edits: bool = False) -> Decision:
    if decision.verdict != "allow":
        raise ActionRejected(decision.reason, decision.action_id, decision.decided_by, decision.rule_id, decision.note)
    if decision.updated_input is not None and not accept_edits:
        # Fail closed: a caller that did not say it runs the edited input must not run the original.
        raise ActionRejected(
            "a person approved this call only with an edited input, which this caller does not take: "
            f"make this call instead: {json.dumps(decision.updated_input, sort_keys=True)}",
            decision.action_id,
            decision.decided_by,
            decision.rule_id,
            decision.note,
        )
    return decision


class _Base:
    def __init__(
        self,
        url: str | None,
        token: str | None,
        session_id: str | None,
        agent: str | None,
        timeout: float,
        poll_wait: float,
        request_timeout: float,
    ) -> None:
        self.endpoint: Endpoint = resolve(url, token)
        self.session_id = session_id or "sdk-" + uuid.uuid4().hex[:16]
        self.agent = agent
        self._plan = _Plan(timeout, poll_wait, request_timeout)

    def _deadline(self, wait: bool | float) -> float:
        total = self._plan.timeout if wait is True or wait is False else float(wait)
        if total <= 0:
            raise ValueError("wait must be True, False or a positive number of seconds")
        return time.monotonic() + total


class Gatehouse(_Base):
    """A blocking client. Thread-safe; each thread keeps its own connection.

    `url`: `http://127.0.0.1:7400` (default), or `unix:/path/check.sock` for hardened mode; else
    `GATEHOUSE_URL`, then `GATEHOUSE_SOCKET`. `token`: else `GATEHOUSE_TOKEN`, then `agent.token`
    in the data directory. `timeout`: how long a check may take in all, pauses included (seconds).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        session_id: str | None = None,
        agent: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_wait: float = DEFAULT_POLL_WAIT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(url, token, session_id, agent, timeout, poll_wait, request_timeout)
        self._transport = SyncTransport(self.endpoint)

    def close(self) -> None:
        self._transport.close()

    def check(
        self,
        tool: str,
        input: Mapping[str, Any],
        *,
        session_id: str | None = None,
        tool_use_id: str | None = None,
        cwd: str | None = None,
        context: Mapping[str, Any] | None = None,
        agent: str | None = None,
        wait: bool | float = True,
    ) -> Decision:
        """Asks whether `tool` may run with `input`. With `wait` (the default, or a number of
        seconds) it waits through a pause and returns `allow` or `reject`; with `wait=False` it
        may return `pending` (then `poll()` or check again with the same ids)."""
        deadline = self._deadline(wait)
        body = _body(tool, input, session_id or self.session_id, tool_use_id or new_tool_use_id(),
                     cwd, context, agent or self.agent)
        wanted = 0.0 if wait is False else self._plan.poll_wait
        decision = self._post(body, wanted, deadline)
        if decision.verdict != "pending" or wait is False:
            return decision
        return self._wait(decision.action_id, deadline)

    def require(self, tool: str, input: Mapping[str, Any], *, accept_edits: bool = False, **kwargs: Any) -> Decision:
        """Like `check()`, but a reject raises `ActionRejected`: it returns only an allow. An
        approval of an edited input raises too, unless `accept_edits` (the caller then runs
        `decision.updated_input`)."""
        return _ensure(self.check(tool, input, **kwargs), accept_edits)

    def poll(self, action_id: str, wait: float = DEFAULT_POLL_WAIT) -> Decision:
        """One long poll (`GET /v1/actions/{id}?wait_ms=N`); the answer may still be pending."""
        wait = min(max(wait, 0.0), MAX_WAIT)
        return self._get(action_id, wait, wait + LONG_POLL_MARGIN)

    def _get(self, action_id: str, wait: float, limit: float) -> Decision:
        try:
            return Decision.from_json(self._transport.request("GET", _poll_path(action_id, wait), None, limit))
        except (NotSent, Interrupted) as err:
            raise GatehouseUnavailable(str(err)) from None

    def _post(self, body: dict[str, Any], wanted: float, deadline: float) -> Decision:
        retries = 0
        reached = False
        while True:
            wait, limit = self._plan.attempt(wanted, _left(deadline))
            body["wait_ms"] = int(wait * 1000)
            try:
                answer = self._transport.request("POST", "/v1/check", encode_body(body), limit)
                return Decision.from_json(answer)
            except Interrupted as err:
                reached = True
                time.sleep(_backoff(retries, deadline, err))
                retries += 1
            except NotSent as err:
                # Refused after an earlier attempt got through: the daemon is restarting.
                if not reached:
                    raise GatehouseUnavailable(str(err)) from None
                time.sleep(_backoff(retries, deadline, err))
                retries += 1

    def _wait(self, action_id: str, deadline: float) -> Decision:
        retries = 0
        while True:
            wait, limit = self._plan.attempt(self._plan.poll_wait, _left(deadline))
            started = time.monotonic()
            try:
                answer = self._transport.request("GET", _poll_path(action_id, wait), None, limit)
            except (NotSent, Interrupted) as err:
                time.sleep(_backoff(retries, deadline, err))
                retries += 1
                continue
            retries = 0
            decision = Decision.from_json(answer)
            if decision.action_id != action_id:
                raise GatehouseUnavailable(f"polled action {action_id!r}, got an answer for {decision.action_id!r}")
            if decision.verdict != "pending":
                return decision
            pause = min(started + MIN_POLL_INTERVAL, deadline) - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def __enter__(self) -> Gatehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGatehouse(_Base):
    """The asyncio client: the same configuration and semantics as `Gatehouse`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        session_id: str | None = None,
        agent: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_wait: float = DEFAULT_POLL_WAIT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(url, token, session_id, agent, timeout, poll_wait, request_timeout)
        self._transport = AsyncTransport(self.endpoint)

    async def check(
        self,
        tool: str,
        input: Mapping[str, Any],
        *,
        session_id: str | None = None,
        tool_use_id: str | None = None,
        cwd: str | None = None,
        context: Mapping[str, Any] | None = None,
        agent: str | None = None,
        wait: bool | float = True,
    ) -> Decision:
        """See `Gatehouse.check`."""
        deadline = self._deadline(wait)
        body = _body(tool, input, session_id or self.session_id, tool_use_id or new_tool_use_id(),
                     cwd, context, agent or self.agent)
        wanted = 0.0 if wait is False else self._plan.poll_wait
        decision = await self._post(body, wanted, deadline)
        if decision.verdict != "pending" or wait is False:
            return decision
        return await self._wait(decision.action_id, deadline)

    async def require(
        self, tool: str, input: Mapping[str, Any], *, accept_edits: bool = False, **kwargs: Any
    ) -> Decision:
        """Like `check()`, but a reject raises `ActionRejected`: it returns only an allow. An
        approval of an edited input raises too, unless `accept_edits` (the caller then runs
        `decision.updated_input`)."""
        return _ensure(await self.check(tool, input, **kwargs), accept_edits)

    async def poll(self, action_id: str, wait: float = DEFAULT_POLL_WAIT) -> Decision:
        """One long poll; the answer may still be pending."""
        wait = min(max(wait, 0.0), MAX_WAIT)
        try:
            answer = await self._transport.request("GET", _poll_path(action_id, wait), None, wait + LONG_POLL_MARGIN)
        except (NotSent, Interrupted) as err:
            raise GatehouseUnavailable(str(err)) from None
        return Decision.from_json(answer)

    async def _post(self, body: dict[str, Any], wanted: float, deadline: float) -> Decision:
        retries = 0
        reached = False
        while True:
            wait, limit = self._plan.attempt(wanted, _left(deadline))
            body["wait_ms"] = int(wait * 1000)
            try:
                answer = await self._transport.request("POST", "/v1/check", encode_body(body), limit)
                return Decision.from_json(answer)
            except Interrupted as err:
                reached = True
                await asyncio.sleep(_backoff(retries, deadline, err))
                retries += 1
            except NotSent as err:
                if not reached:
                    raise GatehouseUnavailable(str(err)) from None
                await asyncio.sleep(_backoff(retries, deadline, err))
                retries += 1

    async def _wait(self, action_id: str, deadline: float) -> Decision:
        retries = 0
        while True:
            wait, limit = self._plan.attempt(self._plan.poll_wait, _left(deadline))
            started = time.monotonic()
            try:
                answer = await self._transport.request("GET", _poll_path(action_id, wait), None, limit)
            except (NotSent, Interrupted) as err:
                await asyncio.sleep(_backoff(retries, deadline, err))
                retries += 1
                continue
            retries = 0
            decision = Decision.from_json(answer)
            if decision.action_id != action_id:
                raise GatehouseUnavailable(f"polled action {action_id!r}, got an answer for {decision.action_id!r}")
            if decision.verdict != "pending":
                return decision
            pause = min(started + MIN_POLL_INTERVAL, deadline) - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
