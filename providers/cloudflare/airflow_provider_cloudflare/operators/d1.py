"""Run SQL templates from include/sql against D1, with values bound as D1 params."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_cloudflare.hooks.d1 import D1Hook

UUID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


class D1SqlOperator(BaseOperator):
    """Render an `.sql` template and run it on a D1 database.

    :param sql: SQL text, or a file name ending in ``.sql`` found on the DAG's ``template_searchpath``.
        Several statements run as one transaction.
    :param database: the database name (``my-database``) or its uuid.
    :param parameters: values for ``?`` placeholders, bound by D1 (never pasted into the SQL).
        For several statements, a list with one list of values per statement.
    :param max_xcom_rows: rows returned through XCom only when the result is this small.
    """

    template_fields: Sequence[str] = ("sql", "database", "parameters")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#f6821f"

    def __init__(
        self,
        *,
        sql: str,
        database: str,
        parameters: list | None = None,
        cloudflare_conn_id: str = "cloudflare_default",
        max_xcom_rows: int = 100,
        max_xcom_bytes: int = 64 * 1024,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sql = sql
        self.database = database
        self.parameters = parameters
        self.cloudflare_conn_id = cloudflare_conn_id
        self.max_xcom_rows = max_xcom_rows
        self.max_xcom_bytes = max_xcom_bytes

    @cached_property
    def hook(self) -> D1Hook:
        return D1Hook(self.cloudflare_conn_id)

    def database_id(self) -> str:
        return self.database if UUID_RE.match(self.database) else self.hook.find_database(self.database)

    def execute(self, context) -> dict[str, Any]:
        from airflow_provider_cloudflare.sqldump import split_statements

        db = self.database_id()
        params = self.parameters or []
        if params and isinstance(params[0], list):
            statements = list(split_statements(self.sql.splitlines(keepends=True)))
            if len(statements) != len(params):
                raise ValueError(f"{len(statements)} statements but {len(params)} parameter lists")
            results = self.hook.batch(db, list(zip(statements, params)))
        else:
            results = self.hook.query(db, self.sql, params)
        summary = []
        for i, res in enumerate(results, 1):
            meta = res.get("meta", {})
            self.log.info(
                "statement %d: %d rows returned, changes=%s rows_read=%s rows_written=%s duration=%.2f ms",
                i,
                len(res.get("results") or []),
                meta.get("changes"),
                meta.get("rows_read"),
                meta.get("rows_written"),
                meta.get("duration") or 0.0,
            )
            summary.append(
                {
                    "rows_returned": len(res.get("results") or []),
                    "changes": meta.get("changes", 0),
                    "rows_read": meta.get("rows_read", 0),
                    "rows_written": meta.get("rows_written", 0),
                    "duration_ms": meta.get("duration", 0.0),
                }
            )
        rows = results[-1].get("results") or []
        out: dict[str, Any] = {"database_id": db, "statements": summary, "changes": sum(s["changes"] for s in summary)}
        if len(rows) <= self.max_xcom_rows and len(json.dumps(rows, default=str)) <= self.max_xcom_bytes:
            out["rows"] = rows
        else:
            out["rows_omitted"] = len(rows)
            self.log.info("%d rows are too many for XCom; only the count is returned", len(rows))
        return out
