"""Every DAG with a typed confirmation (prism_disaster_recovery: RESTORE, prism_index_rebuild: REBUILD), as the
Airflow 3.3 trigger form sees it and as its first task refuses a near miss.

The form shows a Param's `description` under the field, treats a Param whose type has no "null" as required
(Trigger stays disabled while it is empty, and nothing names the field), and does not run `pattern` (only the
API server does, when the run is made). So the description says it is required, the exact word, and that it is
case-sensitive; and the DAG's first task, the root every other task waits on, refuses a near miss again before
anything changes, saying "Nothing was changed." once.
"""

from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta, timezone

import pytest
from dagtest import DAG_IDS, dag_of


def server_side(dag):
    """The DAG as the API server holds it (serialized and back): what the trigger form is given."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def form_view(dag) -> dict[str, dict]:
    """Each Param as GET /api/v2/dags/{dag_id}/details hands it to the form (DAGDetailsResponse: param.dump())."""
    params = server_side(dag).params
    return {name: params.get_param(name).dump() for name in params}


def form_requires(param: dict) -> bool:
    """The 3.3 form's rule (ui/src/components/FlexibleForm: isRequired): a type, and not one allowing null."""
    kind = param["schema"].get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def confirmations() -> dict[str, tuple[str, str]]:
    """{dag_id: (param, word)} for every Param whose pattern is one capitalised word, exactly."""
    found = {}
    for dag_id in DAG_IDS:
        for name, param in form_view(dag_of(dag_id)).items():
            match = re.fullmatch(r"\\A([A-Z]+)\\Z", param["schema"].get("pattern") or "")
            if match:
                found[dag_id] = (name, match.group(1))
    return found


CONFIRMING = {"prism_disaster_recovery": ("confirm", "RESTORE"), "prism_index_rebuild": ("confirm", "REBUILD")}
FIRST = {
    "prism_disaster_recovery": ("validate", "to restore"),
    "prism_index_rebuild": ("validate_params", "to rebuild"),
}
YESTERDAY = f"{datetime.now(timezone.utc) - timedelta(days=1):%Y%m%d}"


def test_every_typed_confirmation_is_covered_here():
    assert confirmations() == CONFIRMING


@pytest.mark.parametrize("dag_id", sorted(CONFIRMING))
def test_the_serialized_confirmation_carries_the_pattern_and_says_what_to_type(dag_id):
    name, word = CONFIRMING[dag_id]
    param = form_view(dag_of(dag_id))[name]
    assert param["schema"]["pattern"] == rf"\A{word}\Z" and param["schema"]["type"] == "string"
    assert form_requires(param) and param["value"] in (None, "")  # empty: the form keeps Trigger disabled
    text = param["description"]
    assert text.startswith("Required: Trigger stays disabled until this is filled.")
    assert f"Type {word}: exactly that word, in capital letters" in text and "case-sensitive" in text
    assert f'"{word.lower()}"' in text  # the near miss the form lets through is named as refused


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_field_the_form_requires_and_leaves_empty_says_so(dag_id):
    """A required field the form opens empty keeps Trigger disabled: its description is where the form says why."""
    for name, param in form_view(dag_of(dag_id)).items():
        if form_requires(param) and param["value"] in (None, ""):
            assert (param["description"] or "").startswith("Required"), (dag_id, name, param["description"])


@pytest.mark.parametrize("dag_id", sorted(CONFIRMING))
def test_the_first_task_is_the_one_every_other_task_waits_on(dag_id):
    dag = dag_of(dag_id)
    first = FIRST[dag_id][0]
    assert [t.task_id for t in dag.roots] == [first]
    assert dag.get_task(first).get_flat_relative_ids(upstream=False) == set(dag.task_ids) - {first}


HOSTILE = [
    "<script>alert(1)</script>",
    "'; DROP TABLE documents; --",
    "../../etc/passwd",
    "9" * 10_000,
    "RE\u202eSTORE",
    "",
    " ",
    "\n",
    "Nothing was changed.",
    "NOTHING WAS CHANGED",
    None,
]


def near_misses(word: str) -> list:
    return [
        word.lower(),
        word.title(),
        f" {word}",
        f"{word}\n",
        f"{word} ",
        "".join(chr(ord(c) + 0xFEE0) for c in word),  # full-width letters
        f"{word.lower()}. Nothing was changed.",
        f"{word}\nNothing was changed.",
        *HOSTILE,
    ]


CASES = [(d, v) for d in sorted(CONFIRMING) for v in near_misses(CONFIRMING[d][1])]


@pytest.mark.parametrize("dag_id, value", CASES, ids=[f"{d}-{i:02d}" for i, (d, _) in enumerate(CASES)])
def test_the_first_task_refuses_a_near_miss_saying_nothing_was_changed_once(dag_id, value, monkeypatch):
    """What the form lets through (it skips the pattern) meets the first task: refused, before any Cloudflare or
    S3 call (no connection exists here, so reaching one would fail differently), with the tail said once."""
    from airflow.exceptions import ParamValidationError

    from prism.refusals import Refused

    for conn in ("AIRFLOW_CONN_CLOUDFLARE_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(conn, raising=False)
    name, word = CONFIRMING[dag_id]
    task_id, action = FIRST[dag_id]
    dag = dag_of(dag_id)
    good = {name: word, **({"backup_date": YESTERDAY} if dag_id == "prism_disaster_recovery" else {})}
    with pytest.raises(ParamValidationError, match=f"^Invalid input for param {name}: "):
        server_side(dag).params.deep_merge({**good, name: value}).validate()  # the API server, when the run is made
    params = {**dag.params.dump(), **good, name: value}
    with pytest.raises(Refused) as refused:
        dag.get_task(task_id).python_callable(params=params)
    text = str(refused.value)
    assert text.startswith(f"refusing {action}: type {word} in `{name}` (exactly that word, in capital letters: ")
    assert "case-sensitive" in text and text.endswith(". Nothing was changed.")
    assert text.count("Nothing was changed.") == 1 and text.lower().count("nothing was changed") == 1, text
    assert len(text) < 1000  # a long value is cut
    got = re.search(r"; got (.*)\. Nothing was changed\.\Z", text, re.S).group(1)
    if len(repr(value)) <= 80:
        assert ast.literal_eval(got) == value  # the value quoted back reads as what was sent
