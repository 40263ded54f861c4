"""What can go wrong when asking Gatehouse, as exceptions: every one of them means "do not run"."""

from __future__ import annotations


class GatehouseError(Exception):
    """Base class: the action was not allowed (no answer, a bad answer, or a reject)."""


class GatehouseConfigError(GatehouseError):
    """The SDK cannot be set up: a bad URL, no token, a token that cannot be sent."""


class GatehouseUnavailable(GatehouseError):
    """No usable answer came: the daemon is down, too slow, or answered something unexpected."""


class GatehouseTimeout(GatehouseUnavailable):
    """The check's deadline passed (the daemon hung, or a person did not decide in time)."""


class GatehouseApiError(GatehouseError):
    """The daemon answered with an error status (`{"error": {"code", "message", "field"}}`)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        suffix = f" (field `{field}`)" if field else ""
        super().__init__(f"gatehouse daemon answered {status} {code}: {message}{suffix}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class ActionRejected(GatehouseError):
    """The daemon rejected the action (a rule, a person, the deadline, or a ledger error)."""

    def __init__(
        self,
        reason: str,
        action_id: str,
        decided_by: str = "",
        rule_id: str | None = None,
        note: str | None = None,
    ) -> None:
        message = f"rejected by gatehouse: {reason}" if reason else "rejected by gatehouse"
        if note and note not in reason:
            message = f"{message} (the person's note: {note})"
        super().__init__(message)
        self.reason = reason
        self.action_id = action_id
        self.decided_by = decided_by
        self.rule_id = rule_id
        #: The person's guidance with a denial, for the model to change course.
        self.note = note
