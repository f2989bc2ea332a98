"""One shape for every refusal: `refusing <action>: <reason>. Nothing was changed.`

A refusal fails the task at once (no retry: the same input would be refused again) and is raised
before anything changes, so the sentence is always true.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

_TAIL = "Nothing was changed."


class Refused(AirflowFailException):
    """A task refused its input or its situation before changing anything."""


def refusal_text(action: str, reason: str) -> str:
    # Reasons written elsewhere may already end with the tail, or a period: say it once.
    reason = str(reason).strip()
    for tail in (_TAIL, _TAIL.lower(), "; nothing was changed", "nothing was changed"):
        if reason.endswith(tail):
            reason = reason[: -len(tail)].rstrip(" ;.,")
    return f"refusing {action}: {reason.rstrip('.')}. {_TAIL}"


def refuse(action: str, reason: str) -> Refused:
    """The exception to raise: `raise refuse("to restore", "backup_date 2026139 is not a date")`."""
    return Refused(refusal_text(action, reason))
