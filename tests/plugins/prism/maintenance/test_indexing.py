"""run_prism against the real demo indexer and the shared localflare (into a scratch database and
index of the test's own), and the token's redaction from what it logs, returns and raises."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from prism.child_process import redact
from prism.maintenance.indexing import changed_since, flags, incremental_summary, run_prism

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "include"))

from prism_demo_indexer import corpus  # noqa: E402

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)
# Prints the token it is given every way a careless command might, then a summary.
LEAKY = """
import json, os, sys
from urllib.parse import quote
token = os.environ["CLOUDFLARE_API_TOKEN"]
print("connection:", json.dumps({"password": token}), "https://x/?token=" + quote(token, safe=""))
print("token:", token, file=sys.stderr)
print(json.dumps({"repo": sys.argv[sys.argv.index("--repo") + 1], "token": token, "echo": "t=" + token}))
sys.exit(int(os.environ.get("LEAKY_EXIT", "0")))
"""


def use_config(monkeypatch, **sections) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps(sections))


@pytest.fixture
def scratch(cf, monkeypatch):
    """A D1 database with PRISM's schema and a Vectorize index, both the test's own, as the config's."""
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    d1, vec = D1Hook(), VectorizeHook()
    name = f"test-indexing-{uuid.uuid4().hex[:12]}"
    db = d1.create_database(name)["uuid"]
    for schema in sorted((ROOT / "include" / "sql" / "schema").glob("*.sql")):
        d1.query(db, schema.read_text())
    vec.create_index(name, 384, "cosine")
    use_config(monkeypatch, cloudflare={"d1_database": name, "vectorize_index": name})
    monkeypatch.setenv(corpus.NOW_ENV, NOW.isoformat())
    yield {"d1": d1, "db": db, "vec": vec, "index": name}
    vec.delete_index(name)
    d1.delete_database(db)


def test_index_then_embed_return_their_summaries(scratch):
    files = corpus.files("prism/core", NOW)
    chunks = sum(len(f.chunks) for f in files)

    indexed = run_prism("indexer", "prism/core")
    assert {k: indexed[k] for k in ("command", "repo", "rebuild", "files", "documents_written", "chunks_written")} == {
        "command": "index",
        "repo": "prism/core",
        "rebuild": False,
        "files": len(files),
        "documents_written": len(files),
        "chunks_written": chunks,
    }
    embedded = run_prism("embedder", "prism/core", *flags(rebuild=True))
    assert (embedded["command"], embedded["rebuild"], embedded["index"]) == ("embed", True, scratch["index"])
    assert embedded["chunks_embedded"] == embedded["vector_count"] == chunks
    assert (
        scratch["d1"].rows(scratch["db"], "SELECT COUNT(*) AS n FROM document_chunks WHERE vector_id = id")[0]["n"]
        == chunks
    )


def test_a_failing_command_raises_with_its_output(cf, monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    use_config(monkeypatch, indexing={"indexer_command": ["python", "-m", "prism_demo_indexer", "reindex"]})
    with pytest.raises(AirflowException, match="exited with 2") as failed:
        run_prism("indexer", "prism/core")
    assert "-m prism_demo_indexer reindex --repo prism/core" in str(failed.value)
    assert "invalid choice: 'reindex'" in str(failed.value)  # the command's own output


@pytest.mark.parametrize("exit_code", [0, 3])
def test_a_token_the_command_prints_is_redacted(cf, monkeypatch, caplog, exit_code):
    from airflow.sdk.exceptions import AirflowException

    use_config(monkeypatch, indexing={"indexer_command": ["python", "-c", LEAKY], "env": ["LEAKY_EXIT"]})
    monkeypatch.setenv("LEAKY_EXIT", str(exit_code))
    caplog.set_level(logging.INFO, logger="prism.maintenance.indexing")
    if exit_code:
        with pytest.raises(AirflowException, match="exited with 3") as failed:
            run_prism("indexer", "prism/core")
        shown = [str(failed.value), caplog.text]
    else:
        assert run_prism("indexer", "prism/core") == {"repo": "prism/core", "token": "***", "echo": "t=***"}
        shown = [caplog.text]
    for text in shown:
        assert "connection:" in text and "token: ***" in text  # the output is there, the token is not
        assert cf.token not in text


def test_redact_every_form_of_the_secret():
    secret = 'a/b"c'
    text = f"raw {secret} json {json.dumps(secret)} url https://x/?t=a%2Fb%22c"
    assert redact(text, secret) == 'raw *** json "***" url https://x/?t=***'
    assert redact(text, None) == text


def test_flags():
    assert flags() == []
    assert flags(since="2026-11-01 00:00:00") == ["--since", "2026-11-01 00:00:00"]
    assert flags(rebuild=True) == ["--rebuild"]


def test_changed_since_prefers_the_param_and_indexes_everything_when_empty(capsys):
    last = {"rows": [{"last_update": "2026-11-28 10:00:00"}]}
    assert changed_since(last) == "2026-11-28 10:00:00"
    assert changed_since(last, "2026-11-01T00:00:00Z") == "2026-11-01T00:00:00Z"
    assert "(from the since param)" in capsys.readouterr().out
    assert changed_since({"rows": [{"last_update": None}]}) is None
    assert changed_since({}) is None
    assert "last update: (no documents); indexing what changed after the beginning" in capsys.readouterr().out


def test_incremental_summary_adds_up_the_repos():
    runs = [
        {"index": {"repo": "prism/core", "documents_written": 2}, "embed": {"chunks_embedded": 5}},
        {"index": {"repo": "prism/docs"}, "embed": {}},  # a repo with nothing new
    ]
    assert incremental_summary("2026-11-28 10:00:00", runs) == {
        "since": "2026-11-28 10:00:00",
        "documents_written": 2,
        "chunks_embedded": 5,
        "repos": {
            "prism/core": {"documents_written": 2, "chunks_embedded": 5},
            "prism/docs": {"documents_written": 0, "chunks_embedded": 0},
        },
    }
