"""The daemon's answer to a check (`CheckResponse` in docs/API.md), parsed strictly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from ._errors import GatehouseUnavailable

Verdict = Literal["allow", "reject", "pending"]
DecidedBy = Literal["rule", "default", "human", "timeout", "error"]
_VERDICTS = ("allow", "reject", "pending")


@dataclass(frozen=True)
class Tier2Score:
    """The classifier's advisory score; it never changes a verdict."""

    score: float
    label: str
    model: str


@dataclass(frozen=True)
class Decision:
    """What Gatehouse decided about one action. Only `verdict == "allow"` lets it run."""

    action_id: str
    verdict: Verdict
    decided_by: str
    reason: str
    rule_id: str | None = None
    tier2: Tier2Score | None = None
    #: The person's note on their decision (a denial's guidance: "use --dry-run").
    note: str | None = None
    #: Edit then approve: the input a person approved in place of the one asked for. Run this
    #: input, never the original; a caller that cannot must not run the call.
    updated_input: dict[str, Any] | None = None

    @property
    def allowed(self) -> bool:
        """The call may run as asked: an allow without an edited input."""
        return self.verdict == "allow" and self.updated_input is None

    @property
    def edited(self) -> bool:
        """A person approved an edited input (`updated_input`) instead of the one asked for."""
        return self.verdict == "allow" and self.updated_input is not None

    @property
    def pending(self) -> bool:
        return self.verdict == "pending"

    @staticmethod
    def from_json(value: Any) -> Decision:
        """Parses a `CheckResponse`; anything that is not one is `GatehouseUnavailable`."""
        if not isinstance(value, dict):
            raise GatehouseUnavailable(f"unexpected response from the gatehouse daemon: {value!r:.200}")
        action_id = value.get("action_id")
        verdict = value.get("verdict")
        decided_by = value.get("decided_by")
        reason = value.get("reason", "")
        rule_id = value.get("rule_id")
        if not isinstance(action_id, str) or verdict not in _VERDICTS or not isinstance(decided_by, str):
            raise GatehouseUnavailable(f"unexpected response from the gatehouse daemon: {value!r:.200}")
        if reason is None:
            reason = ""
        if not isinstance(reason, str) or not (rule_id is None or isinstance(rule_id, str)):
            raise GatehouseUnavailable(f"unexpected response from the gatehouse daemon: {value!r:.200}")
        if verdict == "pending" and not action_id:
            raise GatehouseUnavailable("pending verdict without an action_id")
        note = value.get("note")
        updated_input = value.get("updated_input")
        if not (note is None or isinstance(note, str)) or not (
            updated_input is None or isinstance(updated_input, dict)
        ):
            raise GatehouseUnavailable(f"unexpected response from the gatehouse daemon: {value!r:.200}")
        tier2 = None
        raw = value.get("tier2")
        if isinstance(raw, dict):
            try:
                tier2 = Tier2Score(float(raw["score"]), str(raw.get("label", "")), str(raw.get("model", "")))
            except (KeyError, TypeError, ValueError):
                tier2 = None
        return Decision(action_id, cast(Verdict, verdict), decided_by, reason, rule_id, tier2, note, updated_input)
