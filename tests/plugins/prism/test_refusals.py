"""Every refusal reads `refusing <action>: <reason>. Nothing was changed.`, with the tail said once."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from prism.refusals import Refused, refusal_text, refuse


@pytest.mark.parametrize(
    "reason",
    [
        "backup_date '20261399' is not a date",
        "backup_date '20261399' is not a date.",
        "backup_date '20261399' is not a date. Nothing was changed.",
        "backup_date '20261399' is not a date; nothing was changed",
    ],
)
def test_the_tail_is_said_once(reason):
    text = refusal_text("to restore", reason)
    assert text == "refusing to restore: backup_date '20261399' is not a date. Nothing was changed."
    assert text.lower().count("nothing was changed") == 1


def test_a_refusal_fails_without_retry():
    exc = refuse("to delete daily sets", "the window ends in the future")
    assert isinstance(exc, Refused) and isinstance(exc, AirflowFailException)
    assert str(exc) == "refusing to delete daily sets: the window ends in the future. Nothing was changed."


def test_hostile_reasons_are_kept_verbatim_as_text():
    reason = "name '<script>alert(1)</script>\n' is not allowed"
    assert "<script>alert(1)</script>\n" in refusal_text("to run", reason)
