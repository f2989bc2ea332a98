"""`index` and `embed`: what PRISM's `npm run index` and `npm run embed` do, against D1, Workers AI
and Vectorize through the bundle's hooks (so the retries and budget are the hooks').

Run by the index DAGs, it gets no Airflow connection: the DAG passes CLOUDFLARE_API_TOKEN,
CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE_URL and PRISM_CLOUDFLARE_BUDGET (JSON), as wrangler takes
them. Without CLOUDFLARE_API_TOKEN it uses the Airflow connection PRISM_CLOUDFLARE_CONN_ID
(cloudflare_default), e.g. when run by hand in an Airflow environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from prism_demo_indexer import corpus

CONFIG = Path(__file__).resolve().parents[1] / "prism.config.json"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DOCS_PER_WRITE = 20  # documents per D1 transaction: keeps each JSON param small
CHUNKS_PER_READ = 500  # chunks per page when reading what to embed
IDS_PER_UPDATE = 1000  # chunk ids per UPDATE that records vector ids


def _defaults() -> dict:
    """Resource names: environment (set by the DAG from the runtime config), else include/prism.config.json."""
    try:
        cf = json.loads(CONFIG.read_text())["cloudflare"]
    except (OSError, ValueError, KeyError):
        cf = {}
    return {
        "database": os.environ.get("PRISM_D1_DATABASE") or cf.get("d1_database", "claudes-friend-db"),
        "index": os.environ.get("PRISM_VECTORIZE_INDEX") or cf.get("vectorize_index", "claudes-companion"),
        "model": os.environ.get("PRISM_EMBEDDING_MODEL") or cf.get("embedding_model", "@cf/baai/bge-small-en-v1.5"),
        "conn_id": os.environ.get("PRISM_CLOUDFLARE_CONN_ID", "cloudflare_default"),
    }


def _connect_from_environment(settings: dict) -> None:
    """With CLOUDFLARE_API_TOKEN set: a connection of this process's own for the hooks, from the
    variables the DAG passed; and an Airflow home of its own, so Airflow's import touches nothing of
    the worker's (its config holds secrets) nor the user's home."""
    token = os.environ.get("CLOUDFLARE_API_TOKEN")
    if not token:
        return
    extra = {
        "account_id": os.environ.get("CLOUDFLARE_ACCOUNT_ID", ""),
        "base_url": os.environ.get("CLOUDFLARE_API_BASE_URL") or "https://api.cloudflare.com/client/v4",
    }
    if os.environ.get("PRISM_CLOUDFLARE_BUDGET"):
        extra["budget"] = json.loads(os.environ["PRISM_CLOUDFLARE_BUDGET"])
    os.environ.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "prism-demo-indexer-airflow"))
    os.environ["AIRFLOW_CONN_PRISM_DEMO_INDEXER"] = json.dumps(
        {"conn_type": "generic", "password": token, "extra": extra}
    )
    settings["conn_id"] = "prism_demo_indexer"


def _sql_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _database_id(d1, name: str) -> str:
    return name if UUID_RE.match(name) else d1.find_database(name)


def _repo_id(d1, db: str, repo: str, create: bool) -> str | None:
    rows = d1.rows(db, "SELECT id FROM repos WHERE name = ?", [repo])
    if rows or not create:
        return rows[0]["id"] if rows else None
    d1.query(
        db,
        "INSERT OR IGNORE INTO repos(id, name, url) VALUES (?, ?, ?)",
        ["repo-" + re.sub(r"[^A-Za-z0-9]+", "-", repo).strip("-").lower(), repo, f"https://github.com/{repo}"],
    )
    return d1.rows(db, "SELECT id FROM repos WHERE name = ?", [repo])[0]["id"]


def index(args, settings: dict) -> dict:
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    d1 = D1Hook(settings["conn_id"])
    db = _database_id(d1, args.database)
    repo_id = _repo_id(d1, db, args.repo, create=True)
    files = corpus.files(args.repo, since=args.since)
    verb = "INSERT OR REPLACE" if args.rebuild else "INSERT OR IGNORE"
    added_docs = added_chunks = 0
    for start in range(0, len(files), DOCS_PER_WRITE):
        part = files[start : start + DOCS_PER_WRITE]
        docs = [
            {
                "id": f.doc_id,
                "path": f.path,
                "title": f.title,
                "language": f.language,
                "size": f.size_bytes,
                "at": _sql_time(f.changed_at),
                "repo": repo_id,
            }
            for f in part
        ]
        chunks = [
            {
                "id": f.chunk_id(i),
                "doc": f.doc_id,
                "n": i,
                "text": text,
                "tokens": len(text.split()),
                "at": _sql_time(f.changed_at),
            }
            for f in part
            for i, text in enumerate(f.chunks)
        ]
        results = d1.batch(
            db,
            [
                (
                    f"{verb} INTO documents(id, path, title, language, size_bytes, created_at, repo_id) "
                    "SELECT value->>'id', value->>'path', value->>'title', value->>'language', value->>'size', value->>'at', "
                    "value->>'repo' FROM json_each(?)",
                    [json.dumps(docs)],
                ),
                (
                    f"{verb} INTO document_chunks(id, document_id, chunk_index, content, token_count, created_at) "
                    "SELECT value->>'id', value->>'doc', value->>'n', value->>'text', value->>'tokens', value->>'at' "
                    "FROM json_each(?)",
                    [json.dumps(chunks)],
                ),
                (
                    "DELETE FROM chunks_fts WHERE chunk_id IN (SELECT value->>'id' FROM json_each(?))",
                    [json.dumps(chunks)],
                ),
                (
                    "INSERT INTO chunks_fts(chunk_id, content) SELECT value->>'id', value->>'text' FROM json_each(?)",
                    [json.dumps(chunks)],
                ),
            ],
            read_only=False,
        )
        added_docs += results[0]["meta"].get("changes", 0)
        added_chunks += results[1]["meta"].get("changes", 0)
    return {
        "command": "index",
        "repo": args.repo,
        "since": args.since and args.since.isoformat(),
        "rebuild": args.rebuild,
        "files": len(files),
        "documents_written": added_docs,
        "chunks_written": added_chunks,
    }


def embed(args, settings: dict) -> dict:
    from airflow_provider_cloudflare.hooks.ai import WorkersAIHook
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    d1, ai, vec = D1Hook(settings["conn_id"]), WorkersAIHook(settings["conn_id"]), VectorizeHook(settings["conn_id"])
    db = _database_id(d1, args.database)
    summary = {
        "command": "embed",
        "repo": args.repo,
        "since": args.since and args.since.isoformat(),
        "rebuild": args.rebuild,
        "index": args.index,
        "chunks_embedded": 0,
        "mutations": 0,
    }
    repo_id = _repo_id(d1, db, args.repo, create=False)
    if repo_id is None:
        return summary
    where = ["d.repo_id = ?", "c.id > ?"]
    if not args.rebuild:
        where.append("c.vector_id IS NULL")
    if args.since:
        where.append("d.created_at > ?")
    sql = (
        "SELECT c.id, c.document_id, c.chunk_index, c.content, d.path FROM document_chunks c "
        f"JOIN documents d ON d.id = c.document_id WHERE {' AND '.join(where)} ORDER BY c.id LIMIT {CHUNKS_PER_READ}"
    )
    embedded: list[str] = []

    def vectors():  # pages of chunks, keyset-paginated on id, embedded 100 texts a call
        last = ""
        while True:
            rows = d1.rows(db, sql, [repo_id, last] + ([_sql_time(args.since)] if args.since else []))
            if not rows:
                return
            for row, values in zip(rows, ai.embed([r["content"] for r in rows], model=args.model)):
                embedded.append(row["id"])
                yield {
                    "id": row["id"],
                    "values": values,
                    "metadata": {
                        "document_id": row["document_id"],
                        "chunk_index": row["chunk_index"],
                        "repo": args.repo,
                        "path": row["path"],
                    },
                }
            last = rows[-1]["id"]

    mutations = vec.upsert(args.index, vectors())  # 5,000 vectors a request at most
    if mutations:
        info = vec.wait_for_mutation(args.index, mutations[-1], timeout=args.timeout, poll_interval=0.5)
        summary["vector_count"] = info["vectorCount"]
    for start in range(0, len(embedded), IDS_PER_UPDATE):
        d1.query(
            db,
            "UPDATE document_chunks SET vector_id = id, embedding_model = ? "
            "WHERE id IN (SELECT value FROM json_each(?))",
            [args.model, json.dumps(embedded[start : start + IDS_PER_UPDATE])],
            read_only=False,
        )
    summary.update(chunks_embedded=len(embedded), mutations=len(mutations))
    return summary


def main(argv: list[str] | None = None) -> int:
    settings = _defaults()
    parser = argparse.ArgumentParser(prog="python -m prism_demo_indexer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("index", "write the repo's documents and chunks into D1"),
        ("embed", "embed the repo's chunks that have no vector yet, into Vectorize"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--repo", required=True, help="owner/name, as in indexing.repos")
        p.add_argument("--since", type=corpus.parse_time, help="only what changed after this time (ISO, UTC)")
        p.add_argument("--rebuild", action="store_true", help="rewrite (index) or re-embed (embed) everything")
        p.add_argument("--database", default=settings["database"], help="D1 database name or uuid")
        p.add_argument("--index", default=settings["index"], help="Vectorize index")
        p.add_argument("--model", default=settings["model"], help="Workers AI embedding model")
        p.add_argument("--timeout", type=float, default=600, help="seconds to wait for Vectorize to apply the upserts")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo):
        parser.error(f"--repo must be owner/name, not {args.repo!r}")
    _connect_from_environment(settings)
    started = time.monotonic()
    summary = (index if args.command == "index" else embed)(args, settings)
    summary["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
