"""prism_index_rebuild against a private seeded localflare and the S3 stand-in: refused without the
typed confirmation (nothing changes), and end to end with the pre-rebuild backup and the counts."""

from __future__ import annotations

import gzip
import hashlib
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagtest import load_dag, states, xcom

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "include"))
from prism_demo_indexer import corpus  # noqa: E402

REPOS = ["prism/worker"]  # one repo keeps the test short; the weekly test maps over several


@pytest.fixture(scope="module")
def dag():
    return load_dag("prism_index_rebuild")


@pytest.fixture
def setup(lf_fresh, connect, bucket, configure, monkeypatch):
    """A private seeded server, a bucket of the test's own, one repo, the demo repos' clock pinned."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    configure({"indexing": {"repos": REPOS}, "backups": {"bucket": bucket}})
    now = datetime.now(timezone.utc).replace(microsecond=0)
    monkeypatch.setenv(corpus.NOW_ENV, now.isoformat())
    return server, bucket, now


def state(server) -> dict:
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    d1, vec = D1Hook(), VectorizeHook()
    q = lambda sql: {tuple(r.values()) for r in d1.rows(server.d1_id, sql)}  # noqa: E731
    return {
        "documents": q("SELECT id, created_at FROM documents"),
        "chunks": q("SELECT id, document_id, vector_id FROM document_chunks"),
        "fts": q("SELECT chunk_id FROM chunks_fts"),
        "index": vec.get_index(server.index_name)["config"],
        "vectors": vec.info(server.index_name)["vectorCount"],
        "metadata_indexes": vec.list_metadata_indexes(server.index_name),
    }


def test_refused_without_the_typed_confirmation(setup, s3, airflow_db, dag, alerts):
    from airflow.sdk.exceptions import ParamValidationError

    from prism.refusals import Refused

    server, bucket, _ = setup
    before = state(server)
    # The Param's pattern refuses lower case when the run is made: no run, no task, no alert.
    with pytest.raises(ParamValidationError, match="Invalid input for param confirm"):
        dag.test(run_conf={"confirm": "rebuild", "reason": "lower case is not the confirmation"})
    assert state(server) == before
    assert s3.list_keys(bucket) == []
    assert alerts == []
    with pytest.raises(ParamValidationError):  # the form refuses a confirmation that is not even a string
        dag.params.get_param("confirm").resolve(1)
    # validate_params refuses it too, whatever reaches the task
    with pytest.raises(
        Refused, match=r"^refusing to rebuild: type REBUILD in `confirm` .*got 'rebuild'\. Nothing was changed\.$"
    ):
        dag.get_task("validate_params").python_callable(params={"confirm": "rebuild", "reason": ""})
    assert state(server) == before


def test_rebuild_end_to_end(setup, s3, airflow_db, dag, alerts):
    server, bucket, now = setup
    before = state(server)
    assert before["metadata_indexes"]  # the seed's metadata index on `repo` must survive the rebuild

    run = dag.test(run_conf={"confirm": "REBUILD", "reason": "end-to-end test"})
    assert run.state == "success", (states(run), alerts)

    # The pre-rebuild backup holds what was cleared, and reads back as written.
    prefix = f"prebuild/{run.run_id}/"
    assert sorted(s3.list_keys(bucket, prefix=prefix)) == [prefix + "d1.sql.gz", prefix + "vectors.ndjson.gz"]
    verified = xcom(run, "pre_rebuild_backup.verify")
    for name, key in (("d1", "d1.sql.gz"), ("vectorize", "vectors.ndjson.gz")):
        body = s3.get_key(prefix + key, bucket).get()["Body"].read()
        assert (
            hashlib.sha256(body).hexdigest()
            == verified[name]["sha256"]
            == xcom(run, f"pre_rebuild_backup.{name}")["sha256"]
        )
    rows = xcom(run, "pre_rebuild_backup.d1")["rows"]
    assert (rows["documents"], rows["document_chunks"]) == (len(before["documents"]), len(before["chunks"]))
    dump = gzip.decompress(s3.get_key(prefix + "d1.sql.gz", bucket).get()["Body"].read()).decode()
    assert "'doc-0000000'" in dump  # a seeded document, gone from D1 after the rebuild
    vectors = gzip.decompress(s3.get_key(prefix + "vectors.ndjson.gz", bucket).get()["Body"].read()).splitlines()
    assert len(vectors) == before["vectors"]

    # Cleared and rebuilt: exactly the configured repos' files, every chunk with its vector.
    files = [f for repo in REPOS for f in corpus.files(repo, now)]
    chunk_ids = {f.chunk_id(i) for f in files for i in range(len(f.chunks))}
    after = state(server)
    assert {d[0] for d in after["documents"]} == {f.doc_id for f in files}
    assert {c[0] for c in after["chunks"]} == chunk_ids and all(c[2] == c[0] for c in after["chunks"])
    assert {c[0] for c in after["fts"]} == chunk_ids
    assert after["vectors"] == len(chunk_ids)
    assert after["index"] == {"dimensions": 384, "metric": "cosine"}
    assert after["metadata_indexes"] == before["metadata_indexes"]
    assert xcom(run, "verify_counts") == {
        "documents": len(files),
        "chunks": len(chunk_ids),
        "chunks_without_vector": 0,
        "vectors": len(chunk_ids),
    }
    assert alerts == []
