"""Helpers for the end-to-end tests: runs, task instances and XComs through the REST API v2, the
bucket through S3, and PRISM's Cloudflare data through localflare's API."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from localflare.testing import Api

BUCKET = "prism-backups"
DONE = {"success", "failed"}


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def latest_tick(now: datetime, hour: int, weekday: int | None = None) -> datetime:
    """The most recent `0 hour * * *` (or, with weekday 0=Monday..6=Sunday, `0 hour * * weekday`) <= now."""
    tick = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    while tick > now or (weekday is not None and tick.weekday() != weekday):
        tick -= timedelta(days=1)
    return tick


# ---- Airflow ---------------------------------------------------------------------------------


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"


def trigger(stack, dag_id: str, logical_date: datetime | None, conf: dict | None = None):
    """What the web UI's trigger form sends (with its Referer, so the run says it came from the UI)."""
    body = {"logical_date": logical_date.isoformat() if logical_date else None, "conf": conf or {}}
    return stack.request(
        "POST", f"/dags/{dag_id}/dagRuns", json=body, headers={"Referer": f"{stack.api_url}/dags/{dag_id}"}
    )


def unpause(stack, dag_id: str, paused: bool = False) -> None:
    stack.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()


def runs(stack, dag_id: str, **params) -> list[dict]:
    params.setdefault("limit", 100)
    params.setdefault("order_by", "logical_date")
    return stack.get(f"/dags/{dag_id}/dagRuns", params=params).json()["dag_runs"]


def task_instances(stack, dag_id: str, run_id: str) -> list[dict]:
    return stack.get(f"{run_path(dag_id, run_id)}/taskInstances", params={"limit": 200}).json()["task_instances"]


def states(stack, dag_id: str, run_id: str) -> dict[str, str]:
    return {
        ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["state"]
        for ti in task_instances(stack, dag_id, run_id)
    }


def task_log(stack, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
    resp = stack.request(
        "GET",
        f"{run_path(dag_id, run_id)}/taskInstances/{task_id}/logs/{try_number}",
        params={"full_content": "true", "map_index": map_index},
        headers={"Accept": "text/plain"},
    )
    return resp.text


def explain(stack, dag_id: str, run_id: str) -> str:
    """Task states and the end of each failed task's log: the message when a run did not succeed."""
    lines = [f"{dag_id} {run_id}:"]
    for ti in sorted(task_instances(stack, dag_id, run_id), key=lambda t: t["task_id"]):
        lines.append(f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} try {ti['try_number']}")
        if ti["state"] in ("failed", "upstream_failed", "up_for_retry") and ti["try_number"]:
            lines.append(
                "    "
                + task_log(stack, dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])[-1500:].replace(
                    "\n", "\n    "
                )
            )
    return "\n".join(lines)


def wait_for_run(stack, dag_id: str, run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = stack.get(run_path(dag_id, run_id)).json()
        if run["state"] in DONE:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s\n" + explain(stack, dag_id, run_id)
            )
        time.sleep(2)


def assert_success(stack, run: dict) -> None:
    assert run["state"] == "success", explain(stack, run["dag_id"], run["dag_run_id"])


def xcom(stack, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1):
    resp = stack.request(
        "GET", f"{run_path(dag_id, run_id)}/taskInstances/{task_id}/xcomEntries/{key}", params={"map_index": map_index}
    )
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    value = resp.json()["value"]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def backfill(stack, dag_id: str, start: datetime, end: datetime, *extra: str) -> None:
    """`airflow backfill create`, as an operator runs it on any node of the deployment."""
    stack.airflow(
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        start.isoformat(),
        "--to-date",
        end.isoformat(),
        "--max-active-runs",
        "1",
        *extra,
    )


def wait_for_backfills(stack, dag_ids: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    pending = set(dag_ids)
    while pending:
        for dag_id in sorted(pending):
            items = stack.get("/backfills", params={"dag_id": dag_id}).json()["backfills"]
            if items and all(b["completed_at"] for b in items):
                pending.discard(dag_id)
        if not pending:
            return
        if time.monotonic() > deadline:
            details = "\n".join(
                explain(stack, d, r["dag_run_id"])
                for d in pending
                for r in runs(stack, d, run_type=["backfill"])
                if r["state"] not in DONE
            )
            raise AssertionError(f"backfills of {sorted(pending)} not complete after {timeout:.0f} s\n{details}")
        time.sleep(3)


# ---- the bucket ------------------------------------------------------------------------------


def objects(s3, prefix: str = "") -> dict[str, str]:
    """key -> ETag of every object under prefix."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


def read(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def exists(s3, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=BUCKET, Key=key)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def window_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("Window: "))


# ---- PRISM's Cloudflare resources (localflare) -------------------------------------------------


class Cloudflare:
    """Direct reads of the resources the DAGs work on, to check their effects independently."""

    def __init__(self, lf):
        lf.refresh()
        self.lf, self.api = lf, Api(lf)

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        resp = self.api.post(
            f"/accounts/{{acct}}/d1/database/{self.lf.d1_id}/query", json={"sql": sql, "params": params or []}
        )
        resp.raise_for_status()
        return resp.json()["result"][0]["results"]

    def scalar(self, sql: str, params: list | None = None):
        return next(iter(self.query(sql, params)[0].values()))

    def table_counts(self) -> dict[str, int]:
        names = [
            r["name"]
            for r in self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND substr(name, 1, 7) != 'sqlite_' "
                "AND substr(name, 1, 4) != '_cf_' AND substr(name, 1, 11) != 'chunks_fts_' "
                "ORDER BY name"
            )
        ]
        return {name: self.scalar(f'SELECT COUNT(*) FROM "{name}"') for name in names}

    def vector_count(self) -> int:
        resp = self.api.get(f"/accounts/{{acct}}/vectorize/v2/indexes/{self.lf.index_name}/info")
        resp.raise_for_status()
        return resp.json()["result"]["vectorCount"]

    def kv_key_count(self) -> int:
        count, cursor = 0, None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            resp = self.api.get(f"/accounts/{{acct}}/storage/kv/namespaces/{self.lf.kv_id}/keys", params=params)
            resp.raise_for_status()
            body = resp.json()
            count += len(body["result"])
            cursor = (body.get("result_info") or {}).get("cursor")
            if not cursor:
                return count

    def scratch_resources(self) -> list[str]:
        """Scratch D1 databases and Vectorize indexes a verification left behind (prism-verify-*)."""
        dbs = self.api.get("/accounts/{acct}/d1/database", params={"per_page": 100}).json()["result"]
        indexes = self.api.get("/accounts/{acct}/vectorize/v2/indexes").json()["result"]
        return [x["name"] for x in dbs + indexes if x["name"].startswith("prism-verify-")]

    def snapshot(self) -> dict:
        return {"tables": self.table_counts(), "vectors": self.vector_count(), "kv_keys": self.kv_key_count()}
