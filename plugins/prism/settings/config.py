"""PRISM's maintenance config: include/prism.config.json, then the overlay file PRISM_CONFIG_OVERLAY
names (if set), then the Airflow Variable `prism_config` (JSON), each deep-merged over the one before,
validated before any task uses it.

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
from airflow.sdk import Variable

from prism.settings.paths import BUNDLE

CONFIG_PATH = BUNDLE / "include" / "prism.config.json"
VARIABLE = "prism_config"
# A deployment's own layer between the file and the Variable: a JSON file, absolute or relative to the
# bundle. The demo, smoke, local and e2e stacks and the tests name include/prism.demo.json (the demo indexer).
OVERLAY_ENV = "PRISM_CONFIG_OVERLAY"

_positive = {"type": "number", "exclusiveMinimum": 0}
_count = {"type": "integer", "minimum": 1}
# A command is an argument list (never a shell string); `env` lists the extra variables its child gets.
_command = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_env_names = {
    "type": "array",
    "items": {"type": "string", "pattern": r"\A[A-Za-z_][A-Za-z0-9_]*\Z"},
    "uniqueItems": True,
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["indexing", "npm", "cloudflare", "backups", "thresholds", "retention"],
    "properties": {
        "indexing": {
            # No indexer by default: a deployment (or the demo overlay) names its own; index tasks skip without.
            "type": "object",
            "required": ["repos"],
            "additionalProperties": False,
            "properties": {
                "repos": {
                    "type": "array",
                    "items": {"type": "string", "pattern": r"\A[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z"},
                    "minItems": 1,
                },
                "indexer_command": {"oneOf": [{"type": "null"}, _command]},
                "embedder_command": {"oneOf": [{"type": "null"}, _command]},
                "working_dir": {"type": ["string", "null"], "minLength": 1},
                "env": _env_names,
            },
        },
        "npm": {
            "type": "object",
            "additionalProperties": False,
            "required": ["project_dir", "update_command", "audit_command", "test_command", "deploy_command"],
            "properties": {
                "project_dir": {"type": ["string", "null"], "pattern": r"\A/(?:[^\x00-\x1f\x7f\u2028\u2029]*\S)?\Z"},
                **{f"{step}_command": _command for step in ("update", "audit", "test", "deploy")},
                "env": _env_names,
            },
        },
        "cloudflare": {
            "type": "object",
            "required": [
                "d1_database",
                "vectorize_index",
                "vectorize_dimensions",
                "vectorize_metric",
                "kv_namespace",
                "worker_name",
            ],
            "properties": {
                "d1_database": {"type": "string", "pattern": r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z"},
                "vectorize_index": {"type": "string", "pattern": r"\A[a-z]+[a-z0-9_-]*[a-z0-9]+\Z"},
                "vectorize_dimensions": {"type": "integer", "minimum": 1, "maximum": 1536},
                "vectorize_metric": {"enum": ["cosine", "euclidean", "dot-product"]},
                "kv_namespace": {"type": "string", "minLength": 1},
                "worker_name": {"type": "string", "pattern": r"\A[a-z0-9][a-z0-9_-]{0,62}\Z"},  # a Workers script name
                "embedding_model": {"type": "string"},
            },
        },
        "backups": {
            "type": "object",
            "required": [
                "bucket",
                "daily_retention_days",
                "monthly_retention_months",
                "d1_export_mode",
                "kv_include_values",
                "time_travel_days",
                "safety_retention_days",
            ],
            "properties": {
                "bucket": {"type": "string", "pattern": r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z"},
                "daily_retention_days": _count,
                "monthly_retention_months": _count,
                "d1_export_mode": {"enum": ["auto", "native", "logical"]},
                "kv_include_values": {"type": "boolean"},
                "time_travel_days": {"type": "integer", "minimum": 1, "maximum": 30},
                "safety_retention_days": _count,
            },
        },
        "thresholds": {
            "type": "object",
            "required": [
                "error_rate_percent",
                "p95_latency_ms",
                "free_tier_usage_percent",
                "failed_logins_per_month",
                "failed_auth_per_day",
                "rate_limited_per_day",
            ],
            "properties": {
                "error_rate_percent": _positive,
                "p95_latency_ms": _positive,
                "failed_auth_per_day": _positive,
                "rate_limited_per_day": _positive,
                "free_tier_usage_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "failed_logins_per_month": _count,
            },
        },
        "retention": {
            "type": "object",
            "required": [
                "usage_log_days",
                "cache_low_hit_count",
                "cache_low_hit_age_days",
                "log_gzip_after_days",
                "log_archive_delete_after_days",
            ],
            "properties": dict.fromkeys(
                (
                    "usage_log_days",
                    "cache_low_hit_count",
                    "cache_low_hit_age_days",
                    "log_gzip_after_days",
                    "log_archive_delete_after_days",
                ),
                _count,
            ),
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


@lru_cache(maxsize=4)
def _overlay(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PrismConfigError(f"cannot read the PRISM config overlay {path} ({OVERLAY_ENV}): {exc}") from None
    if not isinstance(data, dict):
        raise PrismConfigError(f"the PRISM config overlay {path} ({OVERLAY_ENV}) must be a JSON object")
    return data


def base_config(path: str = str(CONFIG_PATH)) -> dict:
    """The file, with the overlay file named by PRISM_CONFIG_OVERLAY (if any) merged over it."""
    config = file_config(path)
    overlay = os.environ.get(OVERLAY_ENV, "").strip()
    if overlay:
        config = _merge(config, _overlay(str(BUNDLE / overlay)))  # an absolute path stays as it is
    return config


def load_config(override: str | dict | None = None, path: str = str(CONFIG_PATH)) -> dict:
    """The file's config (and the overlay) with an override (a dict or JSON text) merged in, validated."""
    config = base_config(path)
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
    return (base_config().get("schedules") or {}).get(dag_id, default)
