"""prism_index_incremental against a private localflare seeded three days ago: only the demo repo's
files changed after MAX(documents.created_at) are indexed and embedded."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagtest import load_dag, states, xcom

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "include"))
from prism_demo_indexer import corpus  # noqa: E402

REPOS = ["prism/core"]


@pytest.fixture(scope="module")
def dag():
    return load_dag("prism_index_incremental")


def test_incremental_adds_only_what_is_newer(lf_fresh, connect, configure, airflow_db, dag, monkeypatch, alerts):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    now = datetime.now(timezone.utc).replace(microsecond=0)
    # Seeded three days ago: the last document is about two and a half days old.
    server = lf_fresh("--seed-anchor", (now - timedelta(days=3)).date().isoformat())
    connect(server, budget={"bulk_rps": 0})
    configure({"indexing": {"repos": REPOS}})
    monkeypatch.setenv(corpus.NOW_ENV, now.isoformat())
    d1, vec = D1Hook(), VectorizeHook()
    db = server.d1_id
    docs_before = {r["id"] for r in d1.rows(db, "SELECT id FROM documents")}
    chunks_before = {r["id"] for r in d1.rows(db, "SELECT id FROM document_chunks")}
    vectors_before = vec.info(server.index_name)["vectorCount"]
    last = d1.rows(db, "SELECT MAX(created_at) AS m FROM documents")[0]["m"]
    newer = corpus.files("prism/core", now, since=corpus.parse_time(last))
    older = [f for f in corpus.files("prism/core", now) if f not in newer]
    assert newer and older  # the demo repo has files on both sides of the last update

    run = dag.test()
    assert run.state == "success", (states(run), alerts)

    docs_after = {r["id"]: r for r in d1.rows(db, "SELECT id, created_at FROM documents")}
    assert set(docs_after) == docs_before | {f.doc_id for f in newer}
    assert all(docs_after[f.doc_id]["created_at"] > last for f in newer)
    new_chunks = {f.chunk_id(i) for f in newer for i in range(len(f.chunks))}
    chunks_after = {r["id"]: r["vector_id"] for r in d1.rows(db, "SELECT id, vector_id FROM document_chunks")}
    assert set(chunks_after) == chunks_before | new_chunks
    assert all(chunks_after[c] == c for c in new_chunks)
    assert vec.info(server.index_name)["vectorCount"] == vectors_before + len(new_chunks)
    assert xcom(run, "since") == last
    assert xcom(run, "summary") == {
        "since": last,
        "documents_written": len(newer),
        "chunks_embedded": len(new_chunks),
        "repos": {"prism/core": {"documents_written": len(newer), "chunks_embedded": len(new_chunks)}},
    }
    assert alerts == []


def test_bad_params_fail_before_anything_changes(dag, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException, ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.params.get_param("since").resolve("last tuesday")
    with pytest.raises(ParamValidationError):
        dag.params.get_param("repos").resolve(["not a repo"])
    validate = dag.get_task("validate_params").python_callable
    with pytest.raises(AirflowFailException, match="^refusing to index: not in indexing.repos"):
        validate(params={"repos": ["prism/unknown"], "since": None})
    with pytest.raises(AirflowFailException, match="is not a real time"):
        validate(params={"repos": [], "since": "2026-02-30T00:00:00Z"})
    with pytest.raises(AirflowFailException, match="has no time zone"):
        validate(params={"repos": [], "since": "2026-11-01 00:00:00"})
    assert validate(params={"repos": ["prism/docs"], "since": "2026-11-01T00:00:00Z"}) == ["prism/docs"]
    assert validate(params={"repos": [], "since": None}) == ["prism/core", "prism/docs", "prism/worker"]
