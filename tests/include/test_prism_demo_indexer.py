"""The demo indexer: its deterministic repos, and index/embed against a private seeded localflare.

The commands run in-process here (main() with argv) to keep the test fast; the DAG tests run them
as the subprocesses the DAGs start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from prism_demo_indexer import cli, corpus  # noqa: E402

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)


def test_repos_are_deterministic_and_windowed():
    files = corpus.files("prism/core", NOW)
    assert files == corpus.files("prism/core", NOW)  # same time, same files, same content
    assert len(files) == corpus.HISTORY / corpus.STEP
    assert all(NOW - corpus.HISTORY < f.changed_at <= NOW for f in files)
    assert len({f.doc_id for f in files}) == len(files)
    assert all(len(f.chunk_id(9)) <= 64 for f in files)  # Vectorize ids are at most 64 bytes
    assert {f.language for f in corpus.files("prism/docs", NOW)} == {"markdown"}
    assert {f.doc_id for f in files} != {f.doc_id for f in corpus.files("prism/worker", NOW)}
    since = NOW - timedelta(days=2)
    newer = corpus.files("prism/core", NOW, since=since)
    assert newer == [f for f in files if f.changed_at > since] and 0 < len(newer) < len(files)
    later = corpus.files("prism/core", NOW + timedelta(days=1))
    assert set(later) - set(files) and set(later) & set(files)  # a day on: new files, old ones kept
    assert corpus.parse_time("2026-11-01 10:00:00") == datetime(2026, 11, 1, 10, tzinfo=timezone.utc)


def run(capsys, *argv: str) -> dict:
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_index_and_embed(lf_fresh, connect, capsys, monkeypatch):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    monkeypatch.setenv(corpus.NOW_ENV, NOW.isoformat())
    d1, vec = D1Hook(), VectorizeHook()
    db, index = server.d1_id, server.index_name
    count = lambda sql, *p: d1.rows(db, sql, list(p))[0]["n"]  # noqa: E731
    docs0, chunks0 = count("SELECT COUNT(*) AS n FROM documents"), count("SELECT COUNT(*) AS n FROM document_chunks")
    vectors0 = vec.info(index)["vectorCount"]
    files = corpus.files("prism/ops", NOW)  # a repo the database has never seen: its row is created
    n_chunks = sum(len(f.chunks) for f in files)

    first = run(capsys, "index", "--repo", "prism/ops")
    assert (first["files"], first["documents_written"], first["chunks_written"]) == (len(files), len(files), n_chunks)
    assert count("SELECT COUNT(*) AS n FROM repos WHERE name = 'prism/ops'") == 1
    assert run(capsys, "index", "--repo", "prism/ops")["documents_written"] == 0  # idempotent
    assert count("SELECT COUNT(*) AS n FROM documents") == docs0 + len(files)
    assert count("SELECT COUNT(*) AS n FROM document_chunks") == chunks0 + n_chunks
    assert count("SELECT COUNT(*) AS n FROM chunks_fts WHERE chunk_id LIKE 'demo-%'") == n_chunks
    row = d1.rows(
        db,
        "SELECT d.created_at, r.name FROM documents d JOIN repos r ON r.id = d.repo_id WHERE d.id = ?",
        [files[0].doc_id],
    )[0]
    assert row == {"created_at": files[0].changed_at.strftime("%Y-%m-%d %H:%M:%S"), "name": "prism/ops"}

    embedded = run(capsys, "embed", "--repo", "prism/ops")
    assert (embedded["chunks_embedded"], embedded["mutations"], embedded["vector_count"]) == (
        n_chunks,
        1,
        vectors0 + n_chunks,
    )
    assert vec.info(index)["vectorCount"] == vectors0 + n_chunks
    assert count("SELECT COUNT(*) AS n FROM document_chunks WHERE id LIKE 'demo-%' AND vector_id = id") == n_chunks
    got = next(vec.get_by_ids(index, [files[0].chunk_id(0)]))
    assert got["metadata"] == {
        "document_id": files[0].doc_id,
        "chunk_index": 0,
        "repo": "prism/ops",
        "path": files[0].path,
    }
    assert run(capsys, "embed", "--repo", "prism/ops")["chunks_embedded"] == 0  # nothing without a vector is left

    # A day later: --since takes only what changed after it, for documents and for embeddings.
    monkeypatch.setenv(corpus.NOW_ENV, (NOW + timedelta(days=1)).isoformat())
    since = files[-1].changed_at.strftime("%Y-%m-%d %H:%M:%S")
    newer = corpus.files("prism/ops", NOW + timedelta(days=1), since=files[-1].changed_at)
    assert run(capsys, "index", "--repo", "prism/ops", "--since", since)["files"] == len(newer) == 2
    assert run(capsys, "embed", "--repo", "prism/ops", "--since", since)["chunks_embedded"] == sum(
        len(f.chunks) for f in newer
    )

    # --rebuild rewrites and re-embeds everything of the repo, without duplicating anything.
    total = len(files) + len(newer)
    rebuilt = run(capsys, "index", "--repo", "prism/ops", "--rebuild")
    assert rebuilt["files"] == len(corpus.files("prism/ops", NOW + timedelta(days=1)))
    assert count("SELECT COUNT(*) AS n FROM documents WHERE id LIKE 'demo-%'") == total
    vectors = vec.info(index)["vectorCount"]
    assert run(capsys, "embed", "--repo", "prism/ops", "--rebuild")["chunks_embedded"] == count(
        "SELECT COUNT(*) AS n FROM document_chunks c JOIN documents d ON d.id = c.document_id "
        "JOIN repos r ON r.id = d.repo_id WHERE r.name = 'prism/ops'"
    )
    assert vec.info(index)["vectorCount"] == vectors  # upserts of the same ids
    assert count("SELECT COUNT(*) AS n FROM document_chunks WHERE id LIKE 'demo-%' AND vector_id IS NULL") == 0


def test_command_line_errors_exit_non_zero():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    proc = subprocess.run(
        [sys.executable, "-m", "prism_demo_indexer", "index", "--repo", "not a repo"],
        cwd=ROOT / "include",
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--repo must be owner/name" in proc.stderr
