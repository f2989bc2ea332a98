"""Disaster recovery's input, checked before anything changes: the Params, the backup set (it exists,
is verified, can restore every target and still matches its manifest), the Time Travel window, the
typed confirmation, and the D1 database and KV namespace to restore into.

`validate` is the `validate` task: it returns the request every later task works from, or refuses
with the reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_cloudflare.errors import CloudflareError
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from prism.backups.sets import BackupSetError, prefix, require_restorable, restorable
from prism.param_checks import check_backup_date, parse_iso_with_zone, shown
from prism.refusals import refuse
from prism.settings import connections
from prism.settings.config import runtime_config

TARGETS = ("d1", "vectorize", "kv")
CONFIRMATION = "RESTORE"


class RecoveryInputError(ValueError):
    """The disaster recovery's input is wrong; nothing has changed."""


def check_params(params: dict, now: datetime, time_travel_days: int) -> dict:
    """Cross-field checks the Param schema cannot express, and the calendar: every value is checked
    again here, whatever reached the task. Returns the normalised request."""
    raw_targets = params.get("targets")
    if not isinstance(raw_targets, list) or not all(isinstance(t, str) for t in raw_targets):
        raise RecoveryInputError(f"targets must be a non-empty subset of {list(TARGETS)}, not {shown(raw_targets)}")
    targets = list(dict.fromkeys(raw_targets))
    if not targets or set(targets) - set(TARGETS):
        raise RecoveryInputError(f"targets must be a non-empty subset of {list(TARGETS)}, not {shown(raw_targets)}")
    if params.get("confirm") != CONFIRMATION:
        raise RecoveryInputError(
            f"type {CONFIRMATION} in `confirm` (exactly that word, in capital letters: it is case-sensitive) "
            f"to restore over the live data; got {shown(params.get('confirm'))}"
        )
    source = params.get("source")
    if source == "s3":
        if not params.get("backup_date"):
            raise RecoveryInputError(
                "source s3 needs backup_date: YYYYMMDD (daily), YYYYMM (monthly) or "
                "safety-YYYYMMDDTHHMMSSZ (the safety backup of an earlier recovery)"
            )
        try:
            backup_id = check_backup_date(params["backup_date"], now)
        except ValueError as exc:
            raise RecoveryInputError(str(exc)) from None
        return {"source": "s3", "backup_id": backup_id, "targets": targets}
    if source == "time_travel":
        if targets != ["d1"]:
            raise RecoveryInputError(
                'Time Travel restores D1 only: set targets to ["d1"], and restore Vectorize '
                "and KV from an S3 backup in a second run"
            )
        raw = params.get("timestamp")
        if not raw:
            raise RecoveryInputError(
                "source time_travel needs timestamp (ISO 8601 with a zone, e.g. 2026-11-28T09:00:00Z)"
            )
        try:
            when = parse_iso_with_zone("timestamp", raw, now)
        except ValueError as exc:
            raise RecoveryInputError(str(exc)) from None
        earliest = now - timedelta(days=time_travel_days)
        if not earliest <= when <= now:
            raise RecoveryInputError(
                f"timestamp {when.isoformat()} is outside the Time Travel window "
                f"({earliest.isoformat(timespec='seconds')} to {now.isoformat(timespec='seconds')}, "
                f"{time_travel_days} days)"
            )
        return {"source": "time_travel", "timestamp": when.isoformat(), "targets": targets}
    raise RecoveryInputError(f"source must be s3 or time_travel, not {shown(source)}")


def check_restorable(cadence: str, period: str, manifest: dict, targets: list[str]) -> dict[str, bool]:
    """Refuse (RecoveryInputError) unless the set can restore every requested target, so a restore
    never starts one target that another cannot finish. Returns the set's `restorable`."""
    ok, why = restorable(manifest)
    cannot = [f"{t} ({why[t]})" for t in targets if not ok.get(t)]
    if cannot:
        raise RecoveryInputError(f"set {cadence}/{period} cannot restore {' or '.join(cannot)}")
    return ok


def validate(params: dict) -> dict:
    """The request a recovery works from: the checked Params, the bucket, the D1 database and KV
    namespace ids, and the set's prefix and manifest (S3) or the Time Travel bookmark. Refuses
    (AirflowFailException, "Nothing was changed") with the first problem."""
    config = runtime_config()
    cf, bucket = config["cloudflare"], config["backups"]["bucket"]
    try:
        request = check_params(params, datetime.now(timezone.utc), config["backups"]["time_travel_days"])
        request["bucket"] = bucket
        request["database_id"] = D1Hook().find_database(cf["d1_database"])
        request["namespace_id"] = KVHook().find_namespace(cf["kv_namespace"])
        if request["source"] == "s3":
            cadence, period, manifest = require_restorable(connections.s3(), bucket, request["backup_id"])
            # Every target proven restorable first: the restores run in parallel and replace live data.
            check_restorable(cadence, period, manifest, request["targets"])
            request.update(prefix=prefix(cadence, period), manifest=manifest)
        else:
            request["bookmark"] = D1Hook().get_bookmark(request["database_id"], request["timestamp"])
    except (RecoveryInputError, BackupSetError, CloudflareError, LookupError) as exc:
        raise refuse("to restore", str(exc)) from None
    print(f"restoring {request['targets']} from {request.get('backup_id') or request.get('timestamp')}")
    return request
