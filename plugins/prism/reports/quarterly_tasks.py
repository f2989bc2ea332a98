"""The tasks of prism_quarterly, as plain callables the DAG file declares one line each: each computes its
run's windows (periods.quarterly_run_windows()), gathers the quarter's figures or publishes its review
(the checklist comes from reports.quarterly). A callable's docstring is its task's doc in the UI. The
restore drill's tasks are backups.drill's.

A run reviews the quarter its data interval covers (the last one that ended by the interval's end);
the Param `quarter`, when given, must name that quarter: `windows`, the first task, refuses any other
before anything runs. Point-in-time figures are read only when the run is timely for the quarter
(markdown.live_capture()); a review of the same quarter already in the bucket keeps what it captured
first (markdown.deliver()).

Review callables pull what their quarter's tasks returned (markdown.pulled()) by task id, so the ids
below follow the DAG's groups.
"""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from prism.backups.drill import RESULT_KEY as DRILL_RESULT
from prism.backups.inventory import backups_of_quarter
from prism.monitoring.analytics_windows import totals_in, traffic_in
from prism.monitoring.capacity import monthly_growth
from prism.monitoring.resources import architecture
from prism.refusals import refuse
from prism.reports import quarterly as quarterly_reviews
from prism.reports.markdown import deliver, expired, live_capture, pulled, result_rows
from prism.reports.periods import (
    QUARTERLY_CALENDAR,
    calendar_branch,
    from_iso,
    quarter_mismatch,
    quarterly_run_windows,
)
from prism.settings import connections
from prism.settings.config import runtime_config

DAG_ID = "prism_quarterly"
log = logging.getLogger(__name__)


def _cf() -> dict:
    return runtime_config()["cloudflare"]


def _capture(context) -> dict:
    """The live capture of this run for the quarter it reviews (markdown.live_capture())."""
    return live_capture(context, from_iso(quarterly_run_windows(context)["window"]["end"]))


def guard(context, quarter: int) -> dict:
    """The run's windows, for a review of `quarter`'s checklist; skips it when the run reviews another
    quarter or was refused (`windows` failed: Q3's review runs all_done, whatever became of its upstream)."""
    w = quarterly_run_windows(context)
    why = quarter_mismatch(w, (context.get("params") or {}).get("quarter"))
    if why or w["quarter"] != quarter:
        raise AirflowSkipException(f"no Q{quarter} review: " + (why or f"this run reviews {w['label']}"))
    return w


def review(w: dict, title: str, sections: dict, figures: dict | None = None, stale: bool = False) -> dict:
    """Publish the quarter's review (Markdown and HTML with charts of `figures`); one alert when items need attention."""
    return deliver(DAG_ID, quarterly_reviews.checklist(w, title, sections, figures, stale))


def windows(**context) -> dict:
    """The run's windows, from the end of its data interval: the quarter it reviews. Refuses a Param
    `quarter` naming another quarter, before anything runs."""
    w = quarterly_run_windows(context)
    why = quarter_mismatch(w, (context.get("params") or {}).get("quarter"))
    if why:
        raise refuse("to run the quarterly review", why)
    return w


def quarter(w: dict, **context) -> list[str]:
    """Follow the groups of the quarter the run reviews; say why each other quarter's groups are skipped."""
    log.info("reviewing %s (%s to %s)", w["label"], w["window"]["start"], w["window"]["end"])
    return calendar_branch(QUARTERLY_CALENDAR, w["quarter"], None, "quarter", w["run_date"], "q%d")


def monthly_traffic(**context) -> list[dict]:
    """Worker traffic per month of the quarter reviewed, as far as a report made at the quarter's end
    reads it (analytics_windows.traffic_in(), as of the quarter's end)."""
    hook, script, w = WorkersAnalyticsHook(), _cf()["worker_name"], quarterly_run_windows(context)
    end = from_iso(w["window"]["end"])
    return [
        {"label": m["label"], **traffic_in(hook, script, from_iso(m["start"]), from_iso(m["end"]), as_of=end)}
        for m in w["months"]
    ]


# ---- Q1 ----------------------------------------------------------------------------------------


def inventory(**context) -> dict | None:
    """D1, Vectorize, KV and the Worker as they are now (point-in-time): None when the run is not
    timely for the quarter (markdown.live_capture())."""
    if not _capture(context)["timely"]:
        log.info("the resources are not read: this run is not timely for the quarter it reviews")
        return None
    reviewed = quarterly_run_windows(context)["window"]
    return architecture(_cf(), from_iso(reviewed["start"]), from_iso(reviewed["end"]))


def q1_review(**context) -> dict:
    """Q1: architecture review, security audit."""
    w = guard(context, 1)
    events = pulled(context, "q1.security_audit.security_events")
    sections = quarterly_reviews.q1_items(
        _cf(),
        runtime_config()["thresholds"],
        pulled(context, "q1.architecture_review.inventory"),
        pulled(context, "q1.architecture_review.table_counts"),
        events,
        pulled(context, "q1.security_audit.npm_audit"),
        _capture(context),
    )
    return review(w, "architecture review, security audit", sections, {"security_events": events})


# ---- Q2 ----------------------------------------------------------------------------------------


def quarter_usage(**context) -> dict:
    """The quarter's usage per free-tier resource: its last 30 days (GraphQL keeps 31 days of D1/AI/KV)."""
    reviewed, cf = quarterly_run_windows(context)["window"], _cf()
    return totals_in(
        WorkersAnalyticsHook(),
        cf["worker_name"],
        D1Hook().find_database(cf["d1_database"]),
        from_iso(reviewed["start"]),
        from_iso(reviewed["end"]),
        quarterly_reviews.SCALING_RESOURCES,
    )


def q2_review(**context) -> dict:
    """Q2: performance optimization, scaling review."""
    w = guard(context, 2)
    months = pulled(context, "q2.performance_optimization.monthly_traffic") or []
    usage = pulled(context, "q2.scaling_review.quarter_usage") or {}
    sections = quarterly_reviews.q2_items(
        runtime_config(),
        months,
        pulled(context, "q2.performance_optimization.slow_queries"),
        pulled(context, "q2.performance_optimization.cache_effectiveness"),
        usage,
        _capture(context),
    )
    return review(
        w,
        "performance optimization, scaling review",
        sections,
        {"monthly_traffic": months},
        expired(months, usage),
    )


# ---- Q3 ----------------------------------------------------------------------------------------


def backup_inventory(**context) -> dict | None:
    """The daily and monthly backup sets of the reviewed quarter as the bucket holds them now: complete
    or not, and how far verified (point-in-time: None when the run is not timely for the quarter)."""
    if not _capture(context)["timely"]:
        log.info("the backup sets are not listed: this run is not timely for the quarter it reviews")
        return None
    reviewed = quarterly_run_windows(context)["window"]
    return backups_of_quarter(
        connections.s3(),
        runtime_config()["backups"]["bucket"],
        from_iso(reviewed["start"]),
        from_iso(reviewed["end"]),
    )


def q3_review(**context) -> dict:
    """Q3: dependency audit, backup testing (the quarter's sets and the restore drill), whatever became
    of the drill."""
    w, testing = guard(context, 3), "q3.backup_testing"
    sections = quarterly_reviews.q3_items(
        pulled(context, f"{testing}.backup_inventory"),
        pulled(context, f"{testing}.pick_set"),
        context["ti"].xcom_pull(task_ids=f"{testing}.restore_drill", key=DRILL_RESULT),
        pulled(context, f"{testing}.drop_scratch"),
        pulled(context, "q3.dependency_audit.npm_audit"),
        _capture(context),
    )
    return review(w, "dependency audit, backup testing", sections)


# ---- Q4 ----------------------------------------------------------------------------------------


def growth_projection(usage: dict, **context) -> dict:
    """Growth per month of requests and neurons (complete months of PRISM's usage log) and the
    date each would reach its free-tier daily limit, projected from the end of the year reviewed."""
    return monthly_growth(result_rows(usage), from_iso(quarterly_run_windows(context)["window"]["end"]))


def q4_review(**context) -> dict:
    """Q4: yearly review, capacity planning."""
    w = guard(context, 4)
    plan = pulled(context, "q4.capacity_planning.growth_projection") or {"months": []}
    usage = pulled(context, "q4.yearly_review.usage_by_month")
    months = pulled(context, "q4.yearly_review.monthly_traffic") or []
    sections = quarterly_reviews.q4_items(
        runtime_config()["thresholds"]["free_tier_usage_percent"], usage, months, plan
    )
    figures = {"usage_by_month": usage, "monthly_traffic": months}
    reviewed = review(w, "yearly review, capacity planning", sections, figures, expired(months))
    return {**reviewed, "plan": plan}
