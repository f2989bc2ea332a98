"""Load backups back into Cloudflare: a D1 dump through D1's import, vectors through upserts, KV
through bulk writes. The long waits (D1's ingest, Vectorize applying its mutations) can be deferred
to the triggerer.

These are the building blocks of disaster recovery; they write into whatever target they are given,
so the DAGs that use them check the input and take a safety backup first.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from prism_cloudflare.hooks.d1 import D1Hook
from prism_cloudflare.hooks.kv import KVHook
from prism_cloudflare.hooks.vectorize import VectorizeHook
from prism_cloudflare.operators.backup import HEAVY_POOL
from prism_cloudflare.triggers.cloudflare import D1PollTrigger, VectorizeMutationTrigger


class _RestoreOperator(BaseOperator):
    template_fields: Sequence[str] = ("bucket", "key")
    ui_color = "#c0392b"

    def __init__(self, *, bucket: str, key: str, cloudflare_conn_id: str = "cloudflare_default",
                 aws_conn_id: str = "aws_default", deferrable: bool = False, wait_timeout: timedelta = timedelta(hours=1),
                 poll_interval: float = 1.0, **kwargs):
        kwargs.setdefault("pool", HEAVY_POOL)
        super().__init__(**kwargs)
        self.bucket = bucket
        self.key = key
        self.cloudflare_conn_id = cloudflare_conn_id
        self.aws_conn_id = aws_conn_id
        self.deferrable = deferrable
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval

    def _download(self, tmp: str) -> Path:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        path = Path(tmp) / Path(self.key).name
        S3Hook(aws_conn_id=self.aws_conn_id).get_conn().download_file(self.bucket, self.key, str(path))
        return path

    def _deadline(self) -> float:
        return time.time() + self.wait_timeout.total_seconds()


def _lines(path: Path) -> Iterator[bytes]:
    """The lines of a (possibly gzipped) file, streamed."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


class D1ImportOperator(_RestoreOperator):
    """Import an SQL dump from S3 (plain or gzip) into a D1 database through D1's import API.

    The dump is prepared first (statements over 100 KB split, foreign keys deferred, no BEGIN/COMMIT).
    D1 blocks the database while it ingests.
    """

    template_fields: Sequence[str] = (*_RestoreOperator.template_fields, "database_id")

    def __init__(self, *, database_id: str, **kwargs):
        super().__init__(**kwargs)
        self.database_id = database_id

    @cached_property
    def hook(self) -> D1Hook:
        return D1Hook(self.cloudflare_conn_id)

    def execute(self, context) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="d1-import-") as tmp:
            src = self._download(tmp)
            sql = Path(tmp) / "dump.sql"
            with open(sql, "wb") as out:
                for line in _lines(src):
                    out.write(line)
            if not self.deferrable:
                return self.hook.import_sql(self.database_id, sql, timeout=self.wait_timeout.total_seconds(),
                                            poll_interval=self.poll_interval)
            first, stats = self.hook.start_import(self.database_id, sql)
        if first.get("status") == "complete":
            return self.execute_complete(context, {"status": "complete", "result": first}, prepared=stats)
        self.defer(trigger=D1PollTrigger(self.cloudflare_conn_id, self.database_id, "import", first["at_bookmark"],
                                         self.poll_interval, self._deadline()),
                   method_name="execute_complete", kwargs={"prepared": stats},
                   timeout=self.wait_timeout + timedelta(minutes=5))

    def execute_complete(self, context, event: dict, prepared: dict) -> dict[str, Any]:
        if event.get("status") != "complete":
            raise AirflowException(f"D1 import into {self.database_id} failed: {event.get('message')}")
        result = event["result"]
        return {**result.get("result", {}), "at_bookmark": result["at_bookmark"], "prepared": prepared}


class VectorizeLoadOperator(_RestoreOperator):
    """Upsert every vector of an NDJSON(.gz) backup into an index, 5,000 a request, then wait until
    Vectorize has applied them all (the count equals the backup's)."""

    template_fields: Sequence[str] = (*_RestoreOperator.template_fields, "index")

    def __init__(self, *, index: str, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def execute(self, context) -> dict[str, Any]:
        hook = VectorizeHook(self.cloudflare_conn_id)
        count = 0

        def vectors():
            nonlocal count
            for line in _lines(src):
                if line.strip():
                    rec = json.loads(line)
                    count += 1
                    vec = {"id": rec["id"], "values": rec["values"], "metadata": rec.get("metadata") or {}}
                    if rec.get("namespace") is not None:
                        vec["namespace"] = rec["namespace"]
                    yield vec

        with tempfile.TemporaryDirectory(prefix="vectorize-load-") as tmp:
            src = self._download(tmp)
            mutations = hook.upsert(self.index, vectors())
        if not mutations:
            return {"index": self.index, "vectors": 0, "mutations": 0}
        result = {"index": self.index, "vectors": count, "mutations": len(mutations)}
        if not self.deferrable:
            info = hook.wait_for_mutation(self.index, mutations[-1], timeout=self.wait_timeout.total_seconds(),
                                          poll_interval=self.poll_interval, expected_count=count)
            return {**result, "vector_count": info["vectorCount"]}
        self.defer(trigger=VectorizeMutationTrigger(self.cloudflare_conn_id, self.index, mutations[-1], count,
                                                    self.poll_interval, self._deadline()),
                   method_name="execute_complete", kwargs={"result": result},
                   timeout=self.wait_timeout + timedelta(minutes=5))

    def execute_complete(self, context, event: dict, result: dict) -> dict[str, Any]:
        if event.get("status") != "complete":
            raise AirflowException(f"Vectorize index {self.index} did not apply the load: {event.get('message')}")
        return {**result, "vector_count": event["info"]["vectorCount"]}


class KVLoadOperator(_RestoreOperator):
    """Write a KV snapshot (NDJSON(.gz) from KVBackupOperator) into a namespace with bulk writes."""

    template_fields: Sequence[str] = (*_RestoreOperator.template_fields, "namespace_id")

    def __init__(self, *, namespace_id: str, **kwargs):
        super().__init__(**kwargs)
        self.namespace_id = namespace_id

    def execute(self, context) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="kv-load-") as tmp:
            src = self._download(tmp)
            return {"namespace_id": self.namespace_id, **KVHook(self.cloudflare_conn_id).restore_snapshot(self.namespace_id, _lines(src))}
