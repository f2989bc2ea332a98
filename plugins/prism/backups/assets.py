"""Backup sets as Airflow Assets, so the UI shows their lineage: the backup tasks produce them
(outlets), and verification, the quarterly restore drill and disaster recovery read them (inlets).

One Asset per kind of set (the bucket comes from the config at run time, so the URI names the kind,
not the bucket). A set's own period travels in the task's result and its manifest."""

from __future__ import annotations

from airflow.sdk import Asset

DAILY_SETS = Asset(name="prism_backups_daily", uri="prism-backups://daily/", group="prism-backups")
MONTHLY_SETS = Asset(name="prism_backups_monthly", uri="prism-backups://monthly/", group="prism-backups")
SAFETY_SETS = Asset(name="prism_backups_safety", uri="prism-backups://safety/", group="prism-backups")

BY_CADENCE = {"daily": DAILY_SETS, "monthly": MONTHLY_SETS, "safety": SAFETY_SETS}
EVERY_SET = list(BY_CADENCE.values())
