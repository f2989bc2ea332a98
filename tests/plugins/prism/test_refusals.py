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


PHRASES = [
    "Nothing was changed.",
    "nothing was changed",
    "NOTHING WAS CHANGED.",
    "x. Nothing was changed. y",
    "Nothing was changed.\nNothing was changed.",
    "restore. Nothing was changed.",
    "<script>Nothing was changed.</script>",
]


@pytest.mark.parametrize("value", PHRASES)
def test_the_tail_is_said_once_when_a_quoted_value_carries_it(value):
    """A value quoted back (repr) keeps reading as what was sent, and the sentence is said once, at the end."""
    import ast

    text = refusal_text("to restore", f"type RESTORE in `confirm`; got {value!r}")
    assert text.lower().count("nothing was changed") == 1, text
    assert text.endswith("'. Nothing was changed.")
    quoted = text[len("refusing to restore: type RESTORE in `confirm`; got ") : -len(". Nothing was changed.")]
    assert ast.literal_eval(quoted) == value  # \x20 is an escape repr itself could have written


@pytest.mark.parametrize(
    "reason",
    [
        "refusing to run: unknown conf keys ['a']. Nothing was changed.",  # a refusal passed on
        "refusing to run: x. Nothing was changed. (seen by the validate task)",
        "x. Nothing was changed. Nothing was changed.",
        "x; NOTHING WAS CHANGED",
        "x. nothing   was\nchanged.  ",
        "x: Nothing was changed",
    ],
)
def test_a_reason_that_already_says_it_does_not_get_it_again(reason):
    text = refusal_text("to restore", reason)
    assert text.lower().count("nothing was changed") == 1, text
    assert text.endswith(". Nothing was changed.") and text.startswith("refusing to restore: ")
    assert str(refuse("to restore", reason)) == text
