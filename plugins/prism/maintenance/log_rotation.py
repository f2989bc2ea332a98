"""Application log rotation in the backup bucket (the guide's Log Rotation, without logrotate).

`logs/**.log` older than a cutoff are gzipped into `logs/archive/`, verified, then deleted; archives
whose log is older than a second cutoff are deleted. Cutoffs come from the run's window, never now.
An archive keeps its log's LastModified in its metadata, as gzip(1) keeps a file's mtime.
`archive_logs_due` and `delete_archives_due` are prism_daily's `log_rotation` tasks: they take the
Airflow context, refuse a window ending in the future, and count from its end.
"""

from __future__ import annotations

import gzip
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow_provider_cloudflare.artifacts import hash_s3_object, hash_stream
from prism.backups.deletion_guard import refuse_future_window
from prism.runtime import window
from prism.settings import connections
from prism.settings.config import runtime_config

LOGS_PREFIX = "logs/"
ARCHIVE_PREFIX = "logs/archive/"


class ArchiveMismatch(RuntimeError):
    """An archive read back from the bucket does not hold the log it was made from."""


def _sha256_of_gzip(path: Path) -> tuple[str, int]:
    """(sha256, bytes) of what a local gzip file decompresses to."""
    with gzip.open(path, "rb") as fh:
        return hash_stream(fh)


def archive_one(s3, bucket: str, obj: dict) -> dict:
    """Gzip one log object into logs/archive/, read the archive back and compare, then delete the log
    unless it was replaced meanwhile (then both stay, and the next run archives the new version)."""
    client = s3.get_conn()
    key, modified, etag = obj["Key"], obj["LastModified"], obj["ETag"]
    name = key[len(LOGS_PREFIX) :]
    with tempfile.TemporaryDirectory(prefix="prism-log-") as tmp:
        packed, check = Path(tmp) / "log.gz", Path(tmp) / "check.gz"
        # IfMatch: the log is read as it was listed, or not at all
        with gzip.GzipFile(packed, "wb", mtime=int(modified.timestamp())) as out:
            sha256, size = hash_s3_object(s3, bucket, key, sink=out, if_match=etag)
        # logs/archive/<name>.gz, unless that name holds another log (an earlier rotation of the same
        # name): then the original's time goes into the name. The same log again (a retry) reuses it.
        target = f"{ARCHIVE_PREFIX}{name}.gz"
        existing = s3.head_object(target, bucket)
        if existing and existing.get("Metadata", {}).get("original-sha256") != sha256:
            target = f"{ARCHIVE_PREFIX}{name}.{modified.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.gz"
        client.upload_file(
            str(packed),
            bucket,
            target,
            ExtraArgs={
                "ContentType": "application/gzip",
                "Metadata": {
                    "original-key": key,
                    "original-last-modified": modified.astimezone(timezone.utc).isoformat(),
                    "original-sha256": sha256,
                    "original-bytes": str(size),
                },
            },
        )
        client.download_file(bucket, target, str(check))
        if _sha256_of_gzip(check) != (sha256, size):
            client.delete_object(Bucket=bucket, Key=target)
            raise ArchiveMismatch(f"archive s3://{bucket}/{target} does not match {key}; the log is kept")
        archive_bytes = packed.stat().st_size
    now = s3.head_object(key, bucket)  # None: deleted meanwhile; another ETag: replaced meanwhile
    still = now is not None and now["ETag"] == etag
    if still:
        client.delete_object(Bucket=bucket, Key=key)
    return {
        "key": key,
        "archive": target,
        "bytes": size,
        "archive_bytes": archive_bytes,
        "sha256": sha256,
        "last_modified": modified.isoformat(),
        "original_deleted": still,
    }


def archive_logs(s3, bucket: str, cutoff: datetime) -> dict:
    """Archive every `logs/**.log` last modified before `cutoff`."""
    due = [
        obj
        for obj in s3.iter_file_metadata(LOGS_PREFIX, bucket)  # listed first: archiving adds keys
        if obj["Key"].endswith(".log") and not obj["Key"].startswith(ARCHIVE_PREFIX) and obj["LastModified"] < cutoff
    ]
    archived, changed = [], []
    for obj in due:
        entry = archive_one(s3, bucket, obj)
        (archived if entry["original_deleted"] else changed).append(entry)
    return {
        "cutoff": cutoff.isoformat(),
        "archived": len(archived),
        "objects": archived[:100],
        "changed_during_archive": changed,
        "bytes_in": sum(e["bytes"] for e in archived),
        "bytes_out": sum(e["archive_bytes"] for e in archived),
    }


def delete_old_archives(s3, bucket: str, cutoff: datetime) -> dict:
    """Delete `logs/archive/*.gz` whose log was last modified before `cutoff`."""
    client = s3.get_conn()
    doomed = []
    for obj in s3.iter_file_metadata(ARCHIVE_PREFIX, bucket):
        if not obj["Key"].endswith(".gz"):
            continue
        when = obj["LastModified"]  # an archive is never older than the log it holds
        if when >= cutoff:
            meta = client.head_object(Bucket=bucket, Key=obj["Key"]).get("Metadata", {})
            if "original-last-modified" in meta:
                when = datetime.fromisoformat(meta["original-last-modified"])
        if when < cutoff:
            doomed.append(obj["Key"])
    if doomed:
        s3.delete_objects(bucket, doomed)
    return {"cutoff": cutoff.isoformat(), "deleted": len(doomed), "keys": doomed[:100]}


def archive_logs_due(**context) -> dict:
    """Gzip each `logs/**.log` last modified more than `retention.log_gzip_after_days` before the
    window end into `logs/archive/<name>.gz`, verify the archive, then delete the original."""
    end = window(context)[1]
    refuse_future_window("or archive logs", end)
    config = runtime_config()
    cutoff = end - timedelta(days=config["retention"]["log_gzip_after_days"])
    return archive_logs(connections.s3(), config["backups"]["bucket"], cutoff)


def delete_archives_due(**context) -> dict:
    """Delete `logs/archive/*.gz` whose log was last modified more than
    `retention.log_archive_delete_after_days` before the window end."""
    end = window(context)[1]
    refuse_future_window("log archives", end)
    config = runtime_config()
    cutoff = end - timedelta(days=config["retention"]["log_archive_delete_after_days"])
    return delete_old_archives(connections.s3(), config["backups"]["bucket"], cutoff)
