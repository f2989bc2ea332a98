"""One shape for every refusal: `refusing <action>: <reason>. Nothing was changed.`

A refusal fails the task at once (no retry: the same input would be refused again) and is raised
before anything changes, so the sentence is always true. It is said once, at the end, whatever the
reason carries (refusal_text).
"""

from __future__ import annotations

import re

from airflow.sdk.exceptions import AirflowFailException

_TAIL = "Nothing was changed."
# The tail a reason written elsewhere ends with (a passed-on refusal, a message ending "; nothing was changed").
_TRAILING = re.compile(r"[\s;:,.]*nothing\s+was\s+changed[\s;:,.]*\Z", re.I)
# The phrase anywhere else in a reason: a value quoted back to its sender, a message passed on.
_INSIDE = re.compile(r"(nothing) (was\s+changed)", re.I)


class Refused(AirflowFailException):
    """A task refused its input or its situation before changing anything."""


def refusal_text(action: str, reason: str) -> str:
    """The refusal's sentence, with `Nothing was changed.` said exactly once: a reason's own tail is dropped,
    and the phrase inside it (typed into a field, say) is written with its space as `\\x20`, as repr() writes
    an escape, so a quoted value still reads back as what was sent."""
    reason = str(reason).strip()
    while match := _TRAILING.search(reason):
        reason = reason[: match.start()]
    reason = _INSIDE.sub(r"\1\\x20\2", reason)
    return f"refusing {action}: {reason.rstrip('.')}. {_TAIL}"


def refuse(action: str, reason: str) -> Refused:
    """The exception to raise: `raise refuse("to restore", "backup_date 2026139 is not a date")`."""
    return Refused(refusal_text(action, reason))
