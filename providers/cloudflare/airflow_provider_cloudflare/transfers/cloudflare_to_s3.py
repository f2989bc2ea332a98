"""Back up D1, Vectorize and KV to S3 or R2: streamed, gzipped, hashed and counted on the way.

Each operator writes one gzip object and returns {bucket, key, bytes, sha256, ...counts}. The
object is uploaded only once it is whole (see artifacts.publish), so a failed run never leaves a
partial object that looks complete. Manifests and verification build on these results.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider_cloudflare.artifacts import GzipArtifact, gzip_sql_dump, publish
from airflow_provider_cloudflare.errors import CloudflareNotFound
from airflow_provider_cloudflare.hooks.d1 import D1ExportUnsupported, D1Hook, download
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.operators.d1 import UUID_RE
from airflow_provider_cloudflare.triggers.cloudflare import D1PollTrigger

MODES = ("auto", "native", "logical")


class _BackupOperator(BaseOperator):
    template_fields: Sequence[str] = ("bucket", "key")
    ui_color = "#f6821f"

    def __init__(
        self,
        *,
        bucket: str,
        key: str,
        cloudflare_conn_id: str = "cloudflare_default",
        aws_conn_id: str = "aws_default",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bucket = bucket
        self.key = key
        self.cloudflare_conn_id = cloudflare_conn_id
        self.aws_conn_id = aws_conn_id

    @cached_property
    def s3(self):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    def _publish(self, path: Path, stats: dict, **extra) -> dict[str, Any]:
        obj = publish(self.s3, path, self.bucket, self.key, stats["bytes"])
        result = {**obj, "sha256": stats["sha256"], **extra}
        self.log.info(
            "backed up to s3://%s/%s: %d bytes, sha256 %s", self.bucket, self.key, stats["bytes"], stats["sha256"]
        )
        return result


class D1BackupOperator(_BackupOperator):
    """Back up a D1 database as a gzipped SQL dump.

    :param mode: ``native`` (D1's export: fast, but blocks the database and refuses FTS5 tables),
        ``logical`` (paged SELECTs: never blocks, handles virtual tables), or ``auto`` (native, and
        logical when native refuses the database). The mode used is in the result.
    :param deferrable: wait for a native export in the triggerer instead of a worker slot. Unset, it
        follows ``[operators] default_deferrable`` (read when the operator is created).
    """

    template_fields: Sequence[str] = (*_BackupOperator.template_fields, "database", "mode")

    def __init__(
        self,
        *,
        database: str,
        mode: str = "auto",
        deferrable: bool | None = None,
        export_timeout: timedelta = timedelta(hours=1),
        poll_interval: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.database = database
        self.mode = mode
        # Read at construction, not import, so the deployment's setting at parse time applies.
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.export_timeout = export_timeout
        self.poll_interval = poll_interval

    @cached_property
    def hook(self) -> D1Hook:
        return D1Hook(self.cloudflare_conn_id)

    def _db(self) -> str:
        return self.database if UUID_RE.match(self.database) else self.hook.find_database(self.database)

    def execute(self, context) -> dict[str, Any]:
        if self.mode not in MODES:
            raise AirflowException(f"mode must be one of {MODES}, not {self.mode!r}")
        db = self._db()
        if self.mode == "logical":
            return self._logical(db, reason="requested")
        try:
            if not self.deferrable:
                with tempfile.TemporaryDirectory(prefix="d1-backup-") as tmp:
                    export = self.hook.export_native(
                        db,
                        Path(tmp) / "dump.sql",
                        timeout=self.export_timeout.total_seconds(),
                        poll_interval=self.poll_interval,
                    )
                    return self._finish(db, Path(tmp) / "dump.sql", export)
            first = self.hook.export_request(db)
        except D1ExportUnsupported as exc:
            return self._fallback(db, exc)
        if first.get("status") == "complete":
            return self.execute_complete(context, {"status": "complete", "result": first}, db=db, started=time.time())
        self.defer(
            trigger=D1PollTrigger(
                self.cloudflare_conn_id,
                db,
                "export",
                first["at_bookmark"],
                self.poll_interval,
                time.time() + self.export_timeout.total_seconds(),
            ),
            method_name="execute_complete",
            kwargs={"db": db, "started": time.time()},
            timeout=self.export_timeout + timedelta(minutes=5),
        )

    def execute_complete(self, context, event: dict, db: str, started: float) -> dict[str, Any]:
        if event.get("status") != "complete":
            message = event.get("message", "unknown")
            if "virtual table" in message.lower():
                return self._fallback(db, message)
            raise AirflowException(f"D1 export of {db} failed: {message}")
        result = event["result"]
        with tempfile.TemporaryDirectory(prefix="d1-backup-") as tmp:
            size, digest = download(result["result"]["signed_url"], Path(tmp) / "dump.sql")
            export = {
                "mode": "native",
                "bytes": size,
                "sha256": digest,
                "at_bookmark": result["at_bookmark"],
                "blocked_seconds": round(time.time() - started, 3),
            }
            return self._finish(db, Path(tmp) / "dump.sql", export)

    def _fallback(self, db: str, why) -> dict[str, Any]:
        if self.mode == "native":
            raise AirflowException(f"D1 native export refused {db}: {why}. Use mode='logical' or 'auto'.")
        self.log.warning("native export refused (%s); falling back to a logical export", why)
        return self._logical(db, reason=f"native export refused: {why}")

    def _logical(self, db: str, reason: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="d1-backup-") as tmp:
            export = self.hook.export_logical(db, Path(tmp) / "dump.sql")
            export["reason"] = reason
            return self._finish(db, Path(tmp) / "dump.sql", export)

    def _finish(self, db: str, dump: Path, export: dict) -> dict[str, Any]:
        if export["mode"] == "native":
            self.log.info("D1 was blocked by the native export for %.1f s", export.get("blocked_seconds", 0))
        stats = gzip_sql_dump(dump, dump.with_suffix(".sql.gz"))
        extra = {k: export[k] for k in ("blocked_seconds",) if k in export}
        if "reason" in export:
            extra["fallback_reason"] = export["reason"]
        return self._publish(
            dump.with_suffix(".sql.gz"),
            stats,
            database_id=db,
            mode=export["mode"],
            at_bookmark=export["at_bookmark"],
            rows=stats["rows"],
            dump_bytes=stats["raw_bytes"],
            **extra,
        )


class VectorizeBackupOperator(_BackupOperator):
    """Back up every vector of an index (id, values, metadata, namespace) as gzipped NDJSON.

    :param missing_ok: an index that does not exist gives {"absent": True} instead of failing (a
        safety backup before a disaster recovery, when the index may be what was lost).
    """

    template_fields: Sequence[str] = (*_BackupOperator.template_fields, "index")

    def __init__(self, *, index: str, missing_ok: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.index = index
        self.missing_ok = missing_ok

    def execute(self, context) -> dict[str, Any]:
        hook = VectorizeHook(self.cloudflare_conn_id)
        try:
            info = hook.get_index(self.index)
        except CloudflareNotFound:
            if not self.missing_ok:
                raise
            self.log.warning("Vectorize index %s does not exist: nothing to back up", self.index)
            return {"absent": True, "index": self.index}
        with tempfile.TemporaryDirectory(prefix="vectorize-backup-") as tmp:
            path = Path(tmp) / "vectors.ndjson.gz"
            with GzipArtifact(path) as art:
                export = hook.export_vectors(self.index, art)
                stats = art.close()
            if export["missing"]:
                self.log.warning("%d vectors were deleted while the export ran", export["missing"])
            return self._publish(
                path,
                stats,
                index=self.index,
                vector_count=export["count"],
                dimensions=info["config"]["dimensions"],
                metric=info["config"]["metric"],
                missing_during_export=export["missing"],
            )


class KVBackupOperator(_BackupOperator):
    """Back up a KV namespace: keys with expiration and metadata, and values unless told not to."""

    template_fields: Sequence[str] = (*_BackupOperator.template_fields, "namespace", "include_values")

    def __init__(self, *, namespace: str, include_values: bool | str = True, **kwargs):
        super().__init__(**kwargs)
        self.namespace = namespace
        self.include_values = include_values

    def execute(self, context) -> dict[str, Any]:
        if isinstance(self.include_values, str):  # rendered from a template: "True" / "False"
            if self.include_values.strip().lower() not in ("true", "false"):
                raise AirflowException(f"include_values must be true or false, not {self.include_values!r}")
            self.include_values = self.include_values.strip().lower() == "true"
        hook = KVHook(self.cloudflare_conn_id)
        ns = (
            self.namespace
            if len(self.namespace) == 32 and self.namespace.isalnum()
            else hook.find_namespace(self.namespace)
        )
        with tempfile.TemporaryDirectory(prefix="kv-backup-") as tmp:
            path = Path(tmp) / "kv.ndjson.gz"
            with GzipArtifact(path) as art:
                snap = hook.snapshot(ns, art, include_values=self.include_values)
                stats = art.close()
            return self._publish(
                path,
                stats,
                namespace_id=ns,
                key_count=snap["keys"],
                values_included=self.include_values,
                vanished_during_snapshot=snap["vanished"],
            )
