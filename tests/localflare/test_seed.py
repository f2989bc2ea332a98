"""The demo seed gives every maintenance job real work, is deterministic, and scales."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date

import pytest

from localflare.app import Config, LocalFlare
from localflare.seed import BASE_DOCS, CHUNKS_PER_DOC, ORPHAN_CHUNKS, ORPHAN_RELATIONSHIPS, seed_demo

ANCHOR = date(2026, 11, 1)


def seeded(path, scale=1):
    lf = LocalFlare(Config(data_dir=str(path)))
    summary = seed_demo(lf, scale=scale, anchor=ANCHOR, log=lambda m: None)
    conn = sqlite3.connect(lf.d1.db_path(lf.d1.find_by_name("claudes-friend-db")))
    return lf, summary, conn


def one(conn, sql):
    return conn.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return seeded(tmp_path_factory.mktemp("seed"))


def test_every_job_finds_work(demo):
    _, summary, conn = demo
    now = "'2026-11-01 12:00:00'"
    assert (
        one(conn, "SELECT COUNT(*) FROM document_chunks WHERE document_id NOT IN (SELECT id FROM documents)")
        == ORPHAN_CHUNKS
    )
    assert (
        one(
            conn,
            "SELECT COUNT(*) FROM document_relationships WHERE source_document_id NOT IN (SELECT id FROM documents)"
            " OR target_document_id NOT IN (SELECT id FROM documents)",
        )
        == ORPHAN_RELATIONSHIPS
    )
    assert one(conn, f"SELECT COUNT(*) FROM cache_metadata WHERE expires_at < {now}") > 20
    assert (
        one(
            conn, f"SELECT COUNT(*) FROM cache_metadata WHERE hit_count < 5 AND created_at < datetime({now}, '-7 days')"
        )
        > 20
    )
    assert one(conn, f"SELECT COUNT(*) FROM usage_log WHERE date < date({now}, '-90 days')") > 100
    assert (
        one(
            conn,
            f"SELECT COUNT(*) FROM security_events WHERE type = 'failed_login' AND created_at >= datetime({now}, '-30 days')",
        )
        > 100
    )
    assert (
        one(
            conn,
            f"SELECT COUNT(*) FROM security_events WHERE type = 'api_key_abuse' AND created_at >= datetime({now}, '-30 days')",
        )
        > 0
    )
    assert one(conn, "SELECT COUNT(*) FROM query_log WHERE duration_ms > 1000") >= 10
    assert one(conn, f"SELECT COUNT(*) FROM documents WHERE created_at >= datetime({now}, '-7 days')") > 5
    assert one(conn, "SELECT COUNT(*) FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'") == 1
    assert one(conn, "SELECT COUNT(*) FROM documents WHERE typeof(fingerprint) = 'blob'") == BASE_DOCS
    assert summary["vectors"] == summary["chunks"] == BASE_DOCS * CHUNKS_PER_DOC + ORPHAN_CHUNKS


def test_vectors_kv_and_worker_are_seeded(demo):
    lf, summary, _ = demo
    row, idx = lf.vectorize.index("claudes-companion")
    assert (row["dimensions"], row["metric"], idx.count()) == (384, "cosine", summary["chunks"])
    ns = lf.kv.find_by_title("prism-cache")
    with lf.kv.conn() as c:
        assert c.execute("SELECT COUNT(*) FROM pairs WHERE ns = ?", (ns,)).fetchone()[0] == summary["kv_keys"]
        assert c.execute("SELECT COUNT(*) FROM pairs WHERE expiration IS NOT NULL").fetchone()[0] > 0
        assert c.execute("SELECT COUNT(*) FROM pairs WHERE key LIKE 'blob:%'").fetchone()[0] == 2
    assert len(lf.workers.scripts()["claudes-friend"]["deployments"]) == 3


def test_seed_is_deterministic(tmp_path, demo):
    _, _, conn_a = demo
    _, _, conn_b = seeded(tmp_path / "again")

    def digest(conn):
        h = hashlib.sha256()
        for table in (
            "documents",
            "document_chunks",
            "document_relationships",
            "cache_metadata",
            "usage_log",
            "security_events",
            "query_log",
            "repos",
        ):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(row).encode())
        return h.hexdigest()

    assert digest(conn_a) == digest(conn_b)


def test_scale_multiplies_the_data(tmp_path):
    lf, summary, conn = seeded(tmp_path / "x3", scale=3)
    assert one(conn, "SELECT COUNT(*) FROM documents") == 3 * BASE_DOCS
    assert summary["chunks"] == 3 * BASE_DOCS * CHUNKS_PER_DOC + ORPHAN_CHUNKS
    assert lf.vectorize.index("claudes-companion")[1].count() == summary["chunks"]
    assert summary["kv_keys"] == 3 * 200 + 3
