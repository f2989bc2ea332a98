"""The tasks of prism_quarterly, as plain callables the DAG file declares one line each: each computes its
run's windows (periods.quarterly_run_windows()), gathers the quarter's figures or publishes its review
(the checklist comes from reports.quarterly). A callable's docstring is its task's doc in the UI. The
restore drill's tasks are backups.drill's.

Review callables pull what their quarter's tasks returned (markdown.pulled()) by task id, so the ids
below follow the DAG's groups.
"""

from __future__ import annotations

import logging

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from prism.backups.drill import RESULT_KEY as DRILL_RESULT
from prism.backups.inventory import backups_of_quarter
from prism.monitoring.analytics_windows import totals_in, traffic_in
from prism.monitoring.capacity import monthly_growth
from prism.monitoring.resources import architecture
from prism.reports import quarterly as quarterly_reviews
from prism.reports.markdown import deliver, pulled, result_rows
from prism.reports.periods import QUARTERLY_CALENDAR, calendar_branch, from_iso, quarterly_run_windows
from prism.runtime import capture_labels
from prism.settings import connections
from prism.settings.config import runtime_config

DAG_ID = "prism_quarterly"
log = logging.getLogger(__name__)


def _cf() -> dict:
    return runtime_config()["cloudflare"]


def review(context, title: str, sections: dict[str, list[str]], figures: dict | None = None) -> dict:
    """Publish the quarter's review (Markdown and HTML with charts of `figures`); one alert when items need attention."""
    report = quarterly_reviews.checklist(
        quarterly_run_windows(context), title, sections, capture_labels(context), figures
    )
    return deliver(DAG_ID, report)


def windows(**context) -> dict:
    """The run's windows, from the end of its data interval (the run's date)."""
    return quarterly_run_windows(context)


def quarter(w: dict, **context) -> list[str]:
    """Follow the groups of the run's quarter; say why each other quarter's groups are skipped."""
    log.info("figures for %s", w["previous_quarter"]["label"])
    return calendar_branch(
        QUARTERLY_CALENDAR, w["quarter"], context["params"].get("quarter"), "quarter", w["run_date"], "q%d"
    )


def monthly_traffic(**context) -> list[dict]:
    """Worker traffic per month of the quarter before, as far as GraphQL keeps it."""
    hook, script = WorkersAnalyticsHook(), _cf()["worker_name"]
    return [
        {"label": m["label"], **traffic_in(hook, script, from_iso(m["start"]), from_iso(m["end"]))}
        for m in quarterly_run_windows(context)["months"]
    ]


# ---- Q1 ----------------------------------------------------------------------------------------


def inventory(**context) -> dict:
    """D1, Vectorize, KV and the Worker as they are now (point-in-time, labelled)."""
    reviewed = quarterly_run_windows(context)["previous_quarter"]
    return {
        **architecture(_cf(), from_iso(reviewed["start"]), from_iso(reviewed["end"])),
        "labels": capture_labels(context),
    }


def q1_review(**context) -> dict:
    """Q1: architecture review, security audit."""
    events = pulled(context, "q1.security_audit.security_events")
    sections = quarterly_reviews.q1_items(
        _cf(),
        runtime_config()["thresholds"],
        pulled(context, "q1.architecture_review.inventory"),
        pulled(context, "q1.architecture_review.table_counts"),
        events,
        pulled(context, "q1.security_audit.npm_audit"),
    )
    return review(context, "architecture review, security audit", sections, {"security_events": events})


# ---- Q2 ----------------------------------------------------------------------------------------


def recent_usage(**context) -> dict:
    """The last 30 days' usage per free-tier resource (GraphQL keeps 31 days of it)."""
    last, cf = quarterly_run_windows(context)["last_30_days"], _cf()
    return totals_in(
        WorkersAnalyticsHook(),
        cf["worker_name"],
        D1Hook().find_database(cf["d1_database"]),
        from_iso(last["start"]),
        from_iso(last["end"]),
        quarterly_reviews.SCALING_RESOURCES,
    )


def q2_review(**context) -> dict:
    """Q2: performance optimization, scaling review."""
    months = pulled(context, "q2.performance_optimization.monthly_traffic") or []
    sections = quarterly_reviews.q2_items(
        runtime_config(),
        months,
        pulled(context, "q2.performance_optimization.slow_queries"),
        pulled(context, "q2.performance_optimization.cache_effectiveness"),
        pulled(context, "q2.scaling_review.recent_usage") or {},
    )
    return review(context, "performance optimization, scaling review", sections, {"monthly_traffic": months})


# ---- Q3 ----------------------------------------------------------------------------------------


def backup_inventory(**context) -> dict:
    """The daily and monthly backup sets of the reviewed quarter: complete or not, and how far verified."""
    reviewed = quarterly_run_windows(context)["previous_quarter"]
    return backups_of_quarter(
        connections.s3(),
        runtime_config()["backups"]["bucket"],
        from_iso(reviewed["start"]),
        from_iso(reviewed["end"]),
    )


def q3_review(**context) -> dict:
    """Q3: dependency audit, backup testing (the quarter's sets and the restore drill), whatever became
    of the drill."""
    testing = "q3.backup_testing"
    backups = pulled(context, f"{testing}.backup_inventory")
    sections = quarterly_reviews.q3_items(
        backups,
        pulled(context, f"{testing}.pick_set"),
        context["ti"].xcom_pull(task_ids=f"{testing}.restore_drill", key=DRILL_RESULT),
        pulled(context, f"{testing}.drop_scratch"),
        pulled(context, "q3.dependency_audit.npm_audit"),
    )
    return review(context, "dependency audit, backup testing", sections, {"backups": backups})


# ---- Q4 ----------------------------------------------------------------------------------------


def growth_projection(usage: dict, **context) -> dict:
    """Growth per month of requests and neurons (complete months of PRISM's usage log) and the
    date each would reach its free-tier daily limit."""
    return monthly_growth(result_rows(usage), from_iso(quarterly_run_windows(context)["end"]))


def q4_review(**context) -> dict:
    """Q4: yearly review, capacity planning."""
    plan = pulled(context, "q4.capacity_planning.growth_projection") or {"months": []}
    usage = pulled(context, "q4.yearly_review.usage_by_month")
    months = pulled(context, "q4.yearly_review.monthly_traffic") or []
    sections = quarterly_reviews.q4_items(
        runtime_config()["thresholds"]["free_tier_usage_percent"], usage, months, plan
    )
    figures = {"usage_by_month": usage, "monthly_traffic": months}
    return {**review(context, "yearly review, capacity planning", sections, figures), "plan": plan}
