"""The tasks of prism_monthly, as plain callables the DAG file declares one line each: each computes its
run's windows (periods.monthly_run_windows()), gathers its figures or publishes its report (the text
comes from reports.monthly). A callable's docstring is its task's doc in the UI.

Point-in-time figures (the Worker's /metrics, resource sizes, npm audit, the cache and indexes as
they are) are read only when the run is timely for its report's window (markdown.live_capture():
not in a backfill, within a day of the window's end); a report of the same window already in the
bucket keeps what it captured first (markdown.deliver()).

Report callables pull what their group's SQL tasks returned (markdown.pulled()) by task id, so the
ids below follow the DAG's groups.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from prism.backups.retention import expire_after_good_backup
from prism.monitoring.analytics_windows import daily_traffic_in, traffic_in, usage_in
from prism.monitoring.capacity import capacity_figures
from prism.monitoring.resources import live_resources
from prism.monitoring.worker import PrismWorkerHook
from prism.reports import monthly as monthly_reports
from prism.reports.markdown import deliver, live_capture, pulled
from prism.reports.periods import MONTHLY_CALENDAR, calendar_branch, from_iso, monthly_run_windows
from prism.runtime import in_backfill
from prism.settings import connections
from prism.settings.config import runtime_config

DAG_ID = "prism_monthly"
BACKUP_GROUP = "day_1.backup_verification"


def _cf() -> dict:
    return runtime_config()["cloudflare"]


def _thresholds() -> dict:
    return runtime_config()["thresholds"]


def windows(**context) -> dict:
    """The run's windows, from the end of its data interval (the run's date)."""
    return monthly_run_windows(context)


def calendar_day(w: dict, **context) -> list[str]:
    """Follow the groups of the run's calendar day; say why each other day's groups are skipped."""
    forced = context["params"].get("run_day")
    return calendar_branch(MONTHLY_CALENDAR, w["day"], forced, "run_day", w["run_date"], "day_%d")


def live_only(what: str, **context) -> None:
    """A gate for tasks that act on the present: skip them inside a backfill."""
    if in_backfill(context):
        raise AirflowSkipException(f"{what} acts on the present, so it is skipped inside a backfill")


# ---- day 1 -------------------------------------------------------------------------------------


def monthly_retention(**context) -> dict:
    """Delete complete monthly sets older than backups.monthly_retention_months (from the run's
    month), never the newest verified one. Refuses a window ending in the future; runs only
    after this month's backup proved restorable."""
    w = monthly_run_windows(context)
    # calendar_day's own rule: this task runs all_done, so the branch's skip does not reach it.
    if ((context.get("params") or {}).get("run_day") or w["day"]) != 1:
        raise AirflowSkipException("this run does not follow day 1 of the calendar: no monthly retention")
    cfg = runtime_config()["backups"]
    return expire_after_good_backup(
        context,
        connections.s3(),
        cfg["bucket"],
        "monthly",
        BACKUP_GROUP,
        from_iso(w["end"]),
        cfg["monthly_retention_months"],
        what="monthly backup sets and staging",
    )


def month_traffic(**context) -> dict:
    """The month's totals and its traffic per day (for the report's charts), from GraphQL."""
    win, hook, script = monthly_run_windows(context)["previous_month"], WorkersAnalyticsHook(), _cf()["worker_name"]
    start, end = from_iso(win["start"]), from_iso(win["end"])
    return {**traffic_in(hook, script, start, end), "daily": daily_traffic_in(hook, script, start, end)}


def worker_metrics(**context) -> dict:
    """The Worker's own 30-day figures, point-in-time: read only when the run is timely for the month
    it reports (not in a backfill, within a day of the month's end); with its `capture` either way."""
    month = monthly_run_windows(context)["previous_month"]
    capture = live_capture(context, from_iso(month["end"]))
    return {**(PrismWorkerHook().metrics("30d") if capture["timely"] else {}), "capture": capture}


def performance_report(traffic: dict, metrics: dict, **context) -> dict:
    """The previous calendar month's performance report (Markdown and HTML with charts)."""
    month = monthly_run_windows(context)["previous_month"]
    return deliver(DAG_ID, monthly_reports.performance(traffic, metrics, month, _thresholds()))


# ---- day 7 -------------------------------------------------------------------------------------


def security_report(**context) -> dict:
    """The 30 days' security audit: failed logins, API-key abuse, 401/403 events, npm audit."""
    group, w = "day_7.security_audit", monthly_run_windows(context)
    return deliver(
        DAG_ID,
        monthly_reports.security(
            w,
            _thresholds(),
            pulled(context, f"{group}.security_events"),
            pulled(context, f"{group}.api_key_abuse"),
            pulled(context, f"{group}.npm_audit"),
            live_capture(context, from_iso(w["end"])),
        ),
    )


# ---- day 15 ------------------------------------------------------------------------------------


def optimization_report(**context) -> dict:
    """What index optimization did and found, slow queries, cache effectiveness, index usage."""
    io, po = "day_15.index_optimization", "day_15.performance_optimization"
    figures = {name: pulled(context, f"{io}.{name}") for name in ("analyze", "quick_check", "query_plan")}
    figures |= {
        name: pulled(context, f"{po}.{name}") for name in ("slow_queries", "cache_effectiveness", "index_usage")
    }
    w = monthly_run_windows(context)
    capture = live_capture(context, from_iso(w["end"]))
    return deliver(DAG_ID, monthly_reports.optimization(w, runtime_config(), figures, capture))


# ---- day 21 ------------------------------------------------------------------------------------


def month_to_date_traffic(**context) -> dict:
    """The month to date's Worker traffic, from GraphQL."""
    win = monthly_run_windows(context)["month_to_date"]
    return traffic_in(WorkersAnalyticsHook(), _cf()["worker_name"], from_iso(win["start"]), from_iso(win["end"]))


def log_review(traffic: dict, events: dict, **context) -> dict:
    """The month to date's log review; alerts above the thresholds."""
    return deliver(DAG_ID, monthly_reports.log_review(monthly_run_windows(context), _thresholds(), traffic, events))


def resource_check(**context) -> dict:
    """D1, Vectorize, KV and the Worker as they are now: point-in-time, read only when the run is timely."""
    cf, limit, w = _cf(), _thresholds()["free_tier_usage_percent"], monthly_run_windows(context)
    capture = live_capture(context, from_iso(w["end"]))
    live_now = live_resources(cf) if capture["timely"] else None
    return deliver(DAG_ID, monthly_reports.resources(w, cf, limit, live_now, capture))


# ---- day 28 ------------------------------------------------------------------------------------


def month_usage(**context) -> dict:
    """The month to date's traffic and D1/AI/KV usage, from GraphQL."""
    win, cf, hook = monthly_run_windows(context)["month_to_date"], _cf(), WorkersAnalyticsHook()
    start, end = from_iso(win["start"]), from_iso(win["end"])
    return {
        "traffic": traffic_in(hook, cf["worker_name"], start, end),
        "usage": usage_in(hook, D1Hook().find_database(cf["d1_database"]), start, end),
    }


def monthly_report(figures: dict, **context) -> dict:
    """The month to date's traffic, errors and usage."""
    return deliver(DAG_ID, monthly_reports.month_usage(monthly_run_windows(context), figures))


def capacity_analytics(**context) -> dict:
    """Three 30-day windows of traffic and usage (and two 15-day halves of the last, for the
    datasets GraphQL keeps only 31 days of)."""
    win, cf = monthly_run_windows(context), _cf()
    return capacity_figures(
        WorkersAnalyticsHook(),
        cf["worker_name"],
        D1Hook().find_database(cf["d1_database"]),
        win["capacity"],
        from_iso(win["end"]),
    )


def capacity_report(analytics: dict, **context) -> dict:
    """Growth per resource and the date each limit would be reached; alerts over the threshold."""
    limit = _thresholds()["free_tier_usage_percent"]
    return deliver(DAG_ID, monthly_reports.capacity(monthly_run_windows(context), analytics, limit))
