"""D1SqlOperator against localflare: templates, bound parameters, batches, logs and XCom size.

Operators run through `execute(context)` directly (inline DAGs are not in a bundle, so `dag.test()`
cannot run them); templates are rendered with `render_template_fields`, as the task runner does.
"""

from __future__ import annotations

import uuid

import pytest
import structlog
from airflow.sdk import DAG

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.operators.d1 import D1SqlOperator

DEMO_DB = "claudes-friend-db"


@pytest.fixture
def scratch_db(cf):
    """A private D1 database on the shared localflare (never write to the demo database)."""
    hook = D1Hook()
    db = hook.create_database(f"test-d1sql-{uuid.uuid4().hex[:12]}")
    hook.query(db["uuid"], "CREATE TABLE notes (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT, n INTEGER)")
    yield {"name": db["name"], "uuid": db["uuid"], "hook": hook}
    hook.delete_database(db["uuid"])


def rows(db, sql, params=None):
    return db["hook"].rows(db["uuid"], sql, params)


def test_sql_file_is_rendered_with_jinja_from_template_searchpath(scratch_db, tmp_path):
    # A `.sql` file on template_searchpath: params, a user-defined macro and a loop are all rendered.
    (tmp_path / "seed_notes.sql").write_text(
        "-- seeded for {{ params.owner }}\n"
        "{% for i in range(params.copies) %}"
        "INSERT INTO {{ params.table }} (name, n) VALUES ('{{ params.owner }}-{{ i }}', {{ keep_days * 2 }});\n"
        "{% endfor %}"
    )
    with DAG(
        "test_d1sql_template", schedule=None, template_searchpath=[str(tmp_path)], user_defined_macros={"keep_days": 45}
    ):
        op = D1SqlOperator(task_id="seed", sql="seed_notes.sql", database="{{ params.db }}")
    context = {"params": {"owner": "ops", "copies": 3, "table": "notes", "db": scratch_db["name"]}}
    op.render_template_fields(context)

    assert "INSERT INTO notes (name, n) VALUES ('ops-2', 90);" in op.sql  # the file's text, rendered
    assert op.database == scratch_db["name"]
    result = op.execute(context)

    assert result["database_id"] == scratch_db["uuid"]  # the name was resolved to the uuid
    assert result["changes"] == 3
    assert rows(scratch_db, "SELECT name, n FROM notes ORDER BY name") == [
        {"name": "ops-0", "n": 90},
        {"name": "ops-1", "n": 90},
        {"name": "ops-2", "n": 90},
    ]


def test_parameters_are_bound_never_pasted_into_sql(scratch_db):
    # A value that would break out of a quoted literal and drop the table must stay plain data.
    evil = "Robert'); DROP TABLE notes; --"
    with DAG("test_d1sql_params", schedule=None):
        op = D1SqlOperator(
            task_id="insert",
            database=scratch_db["uuid"],
            sql="INSERT INTO notes (name, body, n) VALUES (?, ?, ?)",
            parameters=["{{ params.who }}", evil, 7],
        )
    context = {"params": {"who": "it's me"}}
    op.render_template_fields(context)  # parameters are templated too, and still bound
    result = op.execute(context)

    assert result["changes"] == 1
    assert "Robert" not in op.sql and "?" in op.sql
    assert rows(scratch_db, "SELECT name, body, n FROM notes") == [{"name": "it's me", "body": evil, "n": 7}]
    tables = rows(scratch_db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'notes'")
    assert tables == [{"name": "notes"}]  # not dropped


def test_several_statements_with_a_parameter_list_each_run_as_a_batch(scratch_db):
    sql = (
        "INSERT INTO notes (name, n) VALUES (?, ?);\n"
        "INSERT INTO notes (name, n) VALUES (?, ?);\n"
        "UPDATE notes SET body = ? WHERE n >= ?;\n"
        "SELECT name, body FROM notes WHERE body = ? ORDER BY name;"
    )
    op = D1SqlOperator(
        task_id="batch",
        database=scratch_db["uuid"],
        sql=sql,
        parameters=[["a", 1], ["b; DELETE FROM notes", 2], ["big", 2], ["big"]],
    )
    result = op.execute({})

    assert [s["changes"] for s in result["statements"]] == [1, 1, 1, 0]
    assert result["changes"] == 3
    assert result["rows"] == [{"name": "b; DELETE FROM notes", "body": "big"}]  # rows of the last statement
    assert rows(scratch_db, "SELECT COUNT(*) AS c FROM notes") == [{"c": 2}]


def test_a_batch_with_the_wrong_number_of_parameter_lists_is_refused(scratch_db):
    op = D1SqlOperator(
        task_id="bad",
        database=scratch_db["uuid"],
        sql="INSERT INTO notes (name) VALUES (?);\nINSERT INTO notes (name) VALUES (?);",
        parameters=[["only one"]],
    )
    with pytest.raises(ValueError, match="2 statements but 1 parameter lists"):
        op.execute({})
    assert rows(scratch_db, "SELECT COUNT(*) AS c FROM notes") == [{"c": 0}]  # nothing ran


def test_a_batch_with_several_statements_on_one_line(scratch_db):
    # SQL is not line-based: two statements on one line are two statements, each with its own list.
    #
    op = D1SqlOperator(
        task_id="one_line",
        database=scratch_db["uuid"],
        sql="INSERT INTO notes (name) VALUES (?); INSERT INTO notes (name) VALUES (?);",
        parameters=[["a"], ["b"]],
    )
    result = op.execute({})
    assert [s["changes"] for s in result["statements"]] == [1, 1]
    assert rows(scratch_db, "SELECT name FROM notes ORDER BY name") == [{"name": "a"}, {"name": "b"}]


def test_meta_is_logged_for_every_statement(scratch_db):
    # Airflow 3 task loggers are structlog loggers that print directly, so pytest's caplog never sees
    # them; structlog's capture_logs is the caplog equivalent.
    op = D1SqlOperator(
        task_id="log",
        database=scratch_db["uuid"],
        sql="INSERT INTO notes (name) VALUES ('x'), ('y'); SELECT * FROM notes; DELETE FROM notes WHERE name = 'x'",
    )
    with structlog.testing.capture_logs() as logs:
        result = op.execute({})

    lines = [e["event"] for e in logs if e["event"].startswith("statement ")]
    assert len(lines) == 3
    assert lines[0].startswith("statement 1: 0 rows returned, changes=2 ") and "rows_written=2" in lines[0]
    assert lines[1].startswith("statement 2: 2 rows returned, changes=0 ")
    assert lines[2].startswith("statement 3: 0 rows returned, changes=1 ")
    assert all("rows_read=" in line and "duration=" in line for line in lines)
    assert [s["rows_returned"] for s in result["statements"]] == [0, 2, 0]
    assert result["statements"][0]["rows_written"] == 2


COUNT_TO = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT x FROM c"


@pytest.mark.parametrize("n, in_xcom", [(100, True), (101, False)])
def test_rows_go_to_xcom_only_when_the_result_is_small(cf, n, in_xcom):
    # Read-only, so the demo database is safe to use (by name).
    op = D1SqlOperator(task_id="count", database=DEMO_DB, sql=COUNT_TO.format(n=n))
    with structlog.testing.capture_logs() as logs:
        result = op.execute({})

    assert result["statements"][0]["rows_returned"] == n
    if in_xcom:
        assert result["rows"] == [{"x": i} for i in range(1, n + 1)] and "rows_omitted" not in result
    else:
        assert "rows" not in result and result["rows_omitted"] == n
        assert any("too many for XCom" in e["event"] for e in logs)


def test_rows_too_big_in_bytes_are_omitted_too(cf):
    # Few rows, but over max_xcom_bytes: only the count goes to XCom.
    op = D1SqlOperator(
        task_id="big",
        database=DEMO_DB,
        max_xcom_bytes=1000,
        sql="SELECT id, content FROM document_chunks ORDER BY id LIMIT 20",
    )
    result = op.execute({})
    assert "rows" not in result and result["rows_omitted"] == 20
