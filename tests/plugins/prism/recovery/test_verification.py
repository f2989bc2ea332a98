"""Disaster recovery's report: what was restored from where, the proof, and the undo."""

from __future__ import annotations

from prism.recovery.verification import report

REQUEST = {
    "source": "s3",
    "bucket": "prism-backups",
    "prefix": "daily/20261128/",
    "targets": ["d1", "kv"],
    "manifest": {"logical_date": "2026-11-28T09:00:00+00:00", "captured_at": "2026-11-29T09:05:00+00:00"},
}
SAFETY = {"period": "20261129T120000Z", "manifest": "s3://prism-backups/safety/20261129T120000Z/manifest.json"}
FIGURES = {"d1_tables": {"documents": 1200, "repos": 3}, "d1_quick_check": ["ok"], "kv_keys": 250}


def test_a_verified_restore_reports_its_source_figures_and_undo():
    text = report(
        REQUEST,
        SAFETY,
        {"d1": {"dropped_tables": ["documents"]}, "kv": {"written": 250}},
        {**FIGURES, "worker_health": {"status": "healthy"}},
        [],
        "manual__1",
    )
    assert "Status: **restored and verified**" in text
    assert "Source: backup set s3://prism-backups/daily/20261128/ (logical date 2026-11-28T09:00:00+00:00" in text
    assert "`safety-20261129T120000Z`" in text and "Time Travel" not in text
    assert "- D1 documents: 1,200 rows" in text and "- kv_keys: 250" in text
    assert "- Worker /health: healthy" in text and text.endswith("## Problems\n\n- none\n")


def test_a_failed_time_travel_restore_names_its_problems_and_the_bookmark_undo():
    request = {"source": "time_travel", "timestamp": "2026-11-28T09:00:00+00:00", "bookmark": "b1", "targets": ["d1"]}
    text = report(
        request,
        {},
        {"d1": {"previous_bookmark": "b0"}},
        {"worker_health": {"status": "degraded"}},
        ["worker: /health says {'status': 'degraded'}"],
        "manual__2",
    )
    assert "Status: **FAILED**" in text and "D1 Time Travel at 2026-11-28T09:00:00+00:00 (bookmark b1)" in text
    assert "bookmark `b0`" in text and "safety-" not in text
    assert "- worker: /health says {'status': 'degraded'}" in text
