"""PRISM's maintenance config: include/prism.config.json, optionally overridden by the Airflow
Variable `prism_config` (JSON, deep-merged), validated before any task uses it.

Reading the file is safe at parse time (no network, no DB). The Variable is read only inside tasks
(`runtime_config`). Schedules come from the file's `schedules` or the PRISM_SCHEDULES environment
variable (JSON {dag_id: cron}), so a deployment can change them without touching code.
"""

from __future__ import annotations

import json
import os
from copy import deepcopy
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

CONFIG_PATH = Path(__file__).resolve().parents[2] / "include" / "prism.config.json"
VARIABLE = "prism_config"

_positive = {"type": "number", "exclusiveMinimum": 0}
_count = {"type": "integer", "minimum": 1}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["indexing", "cloudflare", "backups", "thresholds", "retention"],
    "properties": {
        "indexing": {
            "type": "object", "required": ["repos", "indexer_command", "embedder_command", "working_dir"],
            "properties": {
                "repos": {"type": "array", "items": {"type": "string", "pattern": r"^[\w.-]+/[\w.-]+$"}, "minItems": 1},
                "indexer_command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "embedder_command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "working_dir": {"type": "string", "minLength": 1},
            },
        },
        "cloudflare": {
            "type": "object",
            "required": ["d1_database", "vectorize_index", "vectorize_dimensions", "vectorize_metric", "kv_namespace", "worker_name"],
            "properties": {
                "d1_database": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"},
                "vectorize_index": {"type": "string", "pattern": r"^[a-z]+[a-z0-9_-]*[a-z0-9]+$"},
                "vectorize_dimensions": {"type": "integer", "minimum": 1, "maximum": 1536},
                "vectorize_metric": {"enum": ["cosine", "euclidean", "dot-product"]},
                "kv_namespace": {"type": "string", "minLength": 1},
                "worker_name": {"type": "string", "minLength": 1},
                "embedding_model": {"type": "string"},
            },
        },
        "backups": {
            "type": "object", "required": ["bucket", "daily_retention_days", "monthly_retention_months", "d1_export_mode",
                                           "kv_include_values", "time_travel_days", "safety_retention_days"],
            "properties": {"bucket": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
                           "daily_retention_days": _count, "monthly_retention_months": _count,
                           "d1_export_mode": {"enum": ["auto", "native", "logical"]},
                           "kv_include_values": {"type": "boolean"},
                           "time_travel_days": {"type": "integer", "minimum": 1, "maximum": 30},
                           "safety_retention_days": _count},
        },
        "thresholds": {
            "type": "object",
            "required": ["error_rate_percent", "p95_latency_ms", "free_tier_usage_percent", "failed_logins_per_month",
                         "failed_auth_per_day", "rate_limited_per_day"],
            "properties": {"error_rate_percent": _positive, "p95_latency_ms": _positive,
                           "failed_auth_per_day": _positive, "rate_limited_per_day": _positive,
                           "free_tier_usage_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                           "failed_logins_per_month": _count},
        },
        "retention": {
            "type": "object",
            "required": ["usage_log_days", "cache_low_hit_count", "cache_low_hit_age_days", "log_gzip_after_days",
                         "log_archive_delete_after_days"],
            "properties": {k: _count for k in ("usage_log_days", "cache_low_hit_count", "cache_low_hit_age_days",
                                                "log_gzip_after_days", "log_archive_delete_after_days")},
        },
        "schedules": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    },
}


class PrismConfigError(ValueError):
    """The config is not valid; the message names the field and what is wrong."""


def _merge(base: dict, override: dict) -> dict:
    out = deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def validate(config: dict) -> dict:
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'.'.join(str(p) for p in e.path) or '(top level)'}: {e.message}" for e in errors]
        raise PrismConfigError("invalid PRISM config:\n  " + "\n  ".join(lines))
    return config


@lru_cache(maxsize=1)
def file_config(path: str = str(CONFIG_PATH)) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PrismConfigError(f"cannot read the PRISM config {path}: {exc}") from None


def load_config(override: str | dict | None = None, path: str = str(CONFIG_PATH)) -> dict:
    """The file's config with an override (a dict or JSON text) merged in, validated."""
    config = file_config(path)
    if override:
        if isinstance(override, str):
            try:
                override = json.loads(override)
            except ValueError as exc:
                raise PrismConfigError(f"the Airflow Variable {VARIABLE!r} is not valid JSON: {exc}") from None
        if not isinstance(override, dict):
            raise PrismConfigError(f"the Airflow Variable {VARIABLE!r} must be a JSON object")
        config = _merge(config, override)
    return validate(config)


def runtime_config() -> dict:
    """The config a task should use: the file plus the `prism_config` Variable. Call inside tasks only."""
    from airflow.sdk import Variable

    return load_config(Variable.get(VARIABLE, default=None))


def schedule(dag_id: str, default: str | None) -> str | None:
    """The cron for a DAG: PRISM_SCHEDULES (env, JSON) first, then the file's `schedules`, then the default."""
    env = os.environ.get("PRISM_SCHEDULES")
    if env:
        try:
            overrides = json.loads(env)
        except ValueError as exc:
            raise PrismConfigError(f"PRISM_SCHEDULES is not valid JSON: {exc}") from None
        if dag_id in overrides:
            return overrides[dag_id]
    return (file_config().get("schedules") or {}).get(dag_id, default)
