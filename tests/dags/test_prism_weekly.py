"""prism_weekly end to end against a private seeded localflare and the S3 stand-in.

The expected deletions are computed here, in Python, from the rows read before the run, with the
run's window: each cleanup must delete exactly those rows and leave every other row alone. The demo
repositories' clock is pinned (PRISM_DEMO_NOW) so the files the indexer finds are known.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from dagtest import load_dag, run_only, states, xcom

from prism.runtime import sql_time

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "include"))
from prism_demo_indexer import corpus  # noqa: E402

REPOS = ["prism/core", "prism/docs"]


@pytest.fixture(scope="module")
def dag():
    return load_dag("prism_weekly")


def snapshot(d1, db: str) -> dict:
    q = lambda sql: d1.rows(db, sql)  # noqa: E731
    return {
        "cache": {r["key"]: r for r in q("SELECT key, hit_count, created_at, expires_at FROM cache_metadata")},
        "documents": {r["id"]: r for r in q("SELECT id, created_at, repo_id FROM documents")},
        "chunks": {r["id"]: r for r in q("SELECT id, document_id, vector_id, embedding_model FROM document_chunks")},
        "relationships": {
            r["id"]: r for r in q("SELECT id, source_document_id, target_document_id FROM document_relationships")
        },
        "usage": {r["id"]: r["date"] for r in q("SELECT id, date FROM usage_log")},
    }


def test_weekly_run_end_to_end(lf_fresh, connect, s3, bucket, configure, airflow_db, dag, monkeypatch, alerts):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    configure({"indexing": {"repos": REPOS}, "backups": {"bucket": bucket}})
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=7)
    monkeypatch.setenv(corpus.NOW_ENV, end.isoformat())

    d1, vec = D1Hook(), VectorizeHook()
    db = server.d1_id
    before = snapshot(d1, db)
    vectors_before = vec.info(server.index_name)["vectorCount"]
    # What each cleanup must delete, from the config's retention (5 hits, 7 days, 90 days).
    low_hits = {
        k
        for k, r in before["cache"].items()
        if r["hit_count"] < 5 and r["created_at"] < sql_time(end - timedelta(days=7))
    }
    expired = {k for k, r in before["cache"].items() if r["expires_at"] is not None and r["expires_at"] < sql_time(end)}
    orphan_chunks = {k for k, r in before["chunks"].items() if r["document_id"] not in before["documents"]}
    orphan_rels = {
        k
        for k, r in before["relationships"].items()
        if r["source_document_id"] not in before["documents"] or r["target_document_id"] not in before["documents"]
    }
    old_usage = {k for k, d in before["usage"].items() if d < (end - timedelta(days=90)).date().isoformat()}
    assert low_hits and expired - low_hits and orphan_chunks and orphan_rels and old_usage  # the seed has work for each
    files = [f for repo in REPOS for f in corpus.files(repo, end)]
    new_chunks = {f.chunk_id(i) for f in files for i in range(len(f.chunks))}
    assert files and not {f.doc_id for f in files} & set(before["documents"])

    run = dag.test(logical_date=end)
    assert run.state == "success", (states(run), alerts)
    assert (run.data_interval_start, run.data_interval_end) == (start, end)

    after = snapshot(d1, db)
    # Cache cleanup: exactly the rarely hit old rows and the expired rows; every other row stays.
    assert set(after["cache"]) == set(before["cache"]) - low_hits - expired
    assert xcom(run, "cache_cleanup.summary") == {"low_hits": len(low_hits), "expired": len(expired - low_hits)}
    # Database cleanup: orphans, old usage logs; expired cache is already gone.
    assert set(after["relationships"]) == set(before["relationships"]) - orphan_rels
    assert set(after["usage"]) == set(before["usage"]) - old_usage
    assert min(after["usage"].values()) >= (end - timedelta(days=90)).date().isoformat()
    assert set(after["chunks"]) == (set(before["chunks"]) - orphan_chunks) | new_chunks
    assert xcom(run, "database_cleanup.changes") == {
        "orphan_chunks": len(orphan_chunks),
        "orphan_vectors": len(orphan_chunks),
        "orphan_relationships": len(orphan_rels),
        "expired_cache": 0,
        "usage_log": len(old_usage),
    }
    # Index update: the demo repos' files became documents and chunks, every new chunk has its vector.
    assert set(after["documents"]) == set(before["documents"]) | {f.doc_id for f in files}
    for f in files:
        assert after["documents"][f.doc_id]["created_at"] == sql_time(f.changed_at)
    assert all(after["chunks"][c]["vector_id"] == c for c in new_chunks)
    assert {after["chunks"][c]["embedding_model"] for c in new_chunks} == {"@cf/baai/bge-small-en-v1.5"}
    assert vec.info(server.index_name)["vectorCount"] == vectors_before + len(new_chunks) - len(orphan_chunks)
    got = list(vec.get_by_ids(server.index_name, sorted(new_chunks)[:5]))
    assert len(got) == 5 and all(len(v["values"]) == 384 for v in got)
    assert not list(vec.get_by_ids(server.index_name, sorted(orphan_chunks)))
    # The report counts the window's new documents, as a direct COUNT does.
    direct = d1.rows(
        db,
        "SELECT COUNT(*) AS n FROM documents WHERE created_at >= ? AND created_at < ?",
        [sql_time(start), sql_time(end)],
    )[0]["n"]
    new_in_window = [f for f in files if sql_time(start) <= sql_time(f.changed_at) < sql_time(end)]
    assert new_in_window
    report = xcom(run, "index_update.report")
    assert report["new_documents"] == direct
    assert sorted(r["index"]["repo"] for r in report["repos"]) == REPOS
    assert sum(r["index"]["documents_written"] for r in report["repos"]) == len(files)
    assert sum(r["embed"]["chunks_embedded"] for r in report["repos"]) == len(new_chunks)
    text = s3.read_key(f"reports/prism_weekly/{end:%Y%m%d}/index_update.md", bucket)
    assert f"{direct} documents were created in the window" in text and start.isoformat() in text
    # Optimize: what D1 allows ran; VACUUM and REINDEX are reported, not run.
    optimized = xcom(run, "optimize.result")
    assert optimized["quick_check"] == "ok" and optimized["uses_index"]
    assert set(optimized["unsupported"]) == {"VACUUM", "REINDEX"}
    assert alerts == []


def test_index_update_and_optimize_skip_inside_a_backfill(dag):
    from airflow.sdk.exceptions import AirflowSkipException

    backfill = SimpleNamespace(run_type="backfill")
    for task_id in ("index_update.repos", "optimize.live_database"):
        with pytest.raises(AirflowSkipException, match="inside a backfill"):
            dag.get_task(task_id).python_callable(dag_run=backfill)


def test_cutoffs_come_from_the_window(dag, configure):
    configure({"retention": {"usage_log_days": 30}})
    end = datetime(2026, 3, 1, 2, tzinfo=timezone.utc)
    out = dag.get_task("cutoffs").python_callable(
        data_interval_start=end - timedelta(days=7), data_interval_end=end, dag_run=SimpleNamespace(run_type="backfill")
    )
    assert out == {
        "start": "2026-02-22 02:00:00",
        "end": "2026-03-01 02:00:00",
        "period": "20260301",
        "cache_min_hits": 5,
        "cache_created_before": "2026-02-22 02:00:00",
        "usage_oldest_kept": "2026-01-30",
        "in_backfill": True,
    }
    # A run without a data interval covers the week before it was made to run.
    out = dag.get_task("cutoffs").python_callable(
        dag_run=SimpleNamespace(run_type="manual", run_after=end, logical_date=None)
    )
    assert (out["start"], out["end"]) == ("2026-02-22 02:00:00", "2026-03-01 02:00:00")


def test_a_window_ending_in_the_future_gets_no_cutoffs(dag):
    """Every D1 cleanup's cutoff comes from `cutoffs`: a run dated in the future would delete every
    cache row and the whole usage_log, so it is refused there, naming both dates."""
    from prism.refusals import Refused

    end = datetime(2099, 12, 27, 2, tzinfo=timezone.utc)
    with pytest.raises(
        Refused,
        match=r"^refusing to delete cache, orphaned and usage_log rows: the run's window ends "
        r"2099-12-27T02:00:00\+00:00, after now 20\d\d-.* \(\+10 min slack\)\. Nothing was changed\.$",
    ):
        dag.get_task("cutoffs").python_callable(
            data_interval_start=end - timedelta(days=7),
            data_interval_end=end,
            dag_run=SimpleNamespace(run_type="manual"),
        )


def test_quick_check_problems_alert_and_fail(dag, alerts):
    from airflow.sdk.exceptions import AirflowFailException

    result = dag.get_task("optimize.result").python_callable
    plan = {"rows": [{"detail": "SEARCH document_chunks USING INDEX idx_chunks_document_id (document_id=?)"}]}
    assert result({"rows": [{"quick_check": "ok"}]}, plan)["quick_check"] == "ok"
    assert alerts == []
    with pytest.raises(AirflowFailException, match="quick_check"):
        result({"rows": [{"quick_check": "row 12 missing from index idx_chunks_document_id"}]}, plan)
    assert len(alerts) == 1 and "quick_check found problems" in alerts[0] and "row 12 missing" in alerts[0]
    result({"rows": [{"quick_check": "ok"}]}, {"rows": [{"detail": "SCAN document_chunks"}]})
    assert len(alerts) == 2 and "idx_chunks_document_id" in alerts[1] and "SCAN document_chunks" in alerts[1]


def test_a_failing_indexer_fails_its_repo_and_alerts_without_the_token(airflow_db, dag, configure, monkeypatch, alerts):
    token = "tok-" + "x" * 36
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_DEFAULT", json.dumps({"conn_type": "generic", "password": token}))
    configure(
        {
            "indexing": {
                "repos": ["prism/core"],
                "indexer_command": [
                    "python",
                    "-c",
                    "import json, os, sys; print(json.dumps({'password': os.environ['CLOUDFLARE_API_TOKEN']})); "
                    "sys.exit(1)",
                ],
            }
        }
    )
    run = run_only(dag, r"^index_update\.(repos|update_repo\.)")
    assert run.state == "failed"
    assert {k: v for k, v in states(run).items() if "update_repo" in k} == {
        "index_update.update_repo.index[0]": "failed",
        "index_update.update_repo.embed[0]": "upstream_failed",
    }
    assert len(alerts) == 1 and "update_repo.index failed" in alerts[0] and "exited with 1" in alerts[0]
    assert '"password": "***"' in alerts[0] and token not in alerts[0]
