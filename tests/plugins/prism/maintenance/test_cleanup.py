"""The weekly cleanup steps' own checks. The rest (cutoffs, the counts, the orphan vectors' deletion,
the backfill skip, the optimisation's verdict and alerts) runs in tests/dags/test_prism_weekly.py."""

from __future__ import annotations

import pytest

from prism.maintenance.cleanup import cache_changes, cleanup_counts, delete_orphan_vectors


def test_orphan_vector_ids_that_did_not_fit_in_xcom_fail_the_task():
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match="^120000 orphaned chunks' vector ids did not fit in XCom$"):
        delete_orphan_vectors({"changes": 120000, "rows_omitted": 120000})


def test_no_orphan_vectors_is_nothing_to_delete():
    # Chunks without a vector id (never embedded) have no vector to delete: no Cloudflare call is made.
    assert delete_orphan_vectors({"changes": 2, "rows": [{"vector_id": None}, {}]}) == 0


def test_counts_name_each_statement(capsys):
    assert cache_changes({"changes": 3}, {"changes": 0}) == {"low_hits": 3, "expired": 0}
    counts = cleanup_counts(4, {"changes": 5}, {"changes": 1}, {"changes": 0}, {"changes": 7})
    assert counts == {
        "orphan_chunks": 5,
        "orphan_vectors": 4,
        "orphan_relationships": 1,
        "expired_cache": 0,
        "usage_log": 7,
    }
    assert "rows deleted: orphan_chunks 5, orphan_vectors 4, orphan_relationships 1, expired_cache 0, usage_log 7" in (
        capsys.readouterr().out
    )
