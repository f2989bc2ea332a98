"""The demo seed: PRISM's D1 data, its vectors, its KV cache and its Worker, all deterministic.

Every job in the bundle finds real work here: orphaned chunks and relationships, expired and
rarely hit cache rows, usage logs older than 90 days, failed logins and slow queries.
`scale` multiplies documents, chunks, vectors and KV keys (scale 1667 gives over a million vectors).
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from . import embedding

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "include" / "sql" / "schema"
REPOS = [
    ("repo-core", "prism/core", "https://github.com/prism/core"),
    ("repo-docs", "prism/docs", "https://github.com/prism/docs"),
    ("repo-worker", "prism/worker", "https://github.com/prism/worker"),
]
WORDS = (
    "vector index query cache worker deploy database chunk document embedding token search latency "
    "request response error retry backup restore schema table column migration cursor batch stream "
    "export import namespace metadata cosine similarity rank score filter budget limit quota neuron "
    "model inference prompt context window summary relation graph node edge parent child module "
    "function class method test config secret key value expire ttl hit miss evict warm cold shard "
    "replica region colo edge durable object queue cron trigger schedule alert health metric trace "
    "span log level warn info debug fatal panic recover timeout deadline cancel async await promise "
    "handler router middleware auth session user admin role permission audit policy rule engine"
).split()
BASE_DOCS = 120
CHUNKS_PER_DOC = 5
ORPHAN_CHUNKS = 15
ORPHAN_RELATIONSHIPS = 12


def _ts(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S")


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def seed_demo(lf, scale: int = 1, anchor: date | None = None, log=print) -> dict:
    """Seed every service. Returns a summary with the counts written."""
    if lf.d1.find_by_name(lf.cfg.d1_name):
        log(f"localflare: {lf.cfg.d1_name} exists already; not seeding again")
        return {}
    anchor = anchor or datetime.now(timezone.utc).date()
    noon = datetime(anchor.year, anchor.month, anchor.day, 12, tzinfo=timezone.utc)
    started = time.monotonic()
    rng = random.Random(20260113)
    db = lf.d1.create(lf.cfg.d1_name)["uuid"]
    summary = {"anchor": anchor.isoformat(), "scale": scale}
    conn = lf.d1.connect(db, user=False)
    try:
        for path in sorted(SCHEMA_DIR.glob("*.sql")):
            conn.executescript(path.read_text())
        conn.execute("BEGIN")
        summary.update(_seed_d1_small_tables(conn, rng, noon))
        chunks = _seed_documents(conn, rng, noon, scale)
        conn.execute("COMMIT")
        summary["chunks"] = len(chunks)
    finally:
        conn.close()
    lf.d1.snapshot(db)
    summary["vectors"] = _seed_vectors(lf, chunks, scale, rng)
    summary["kv_keys"] = _seed_kv(lf, rng, noon, scale)
    _seed_workers(lf, noon)
    summary["seconds"] = round(time.monotonic() - started, 1)
    log(f"localflare: seeded {json.dumps(summary)}")
    return summary


def _seed_d1_small_tables(conn: sqlite3.Connection, rng: random.Random, noon: datetime) -> dict:
    conn.executemany(
        "INSERT INTO repos(id, name, url, created_at) VALUES (?, ?, ?, ?)",
        [(rid, name, url, _ts(noon - timedelta(days=200))) for rid, name, url in REPOS],
    )
    cache = []
    for i in range(300):
        created = noon - timedelta(days=rng.uniform(0, 40))
        expired = i % 6 == 0
        expires = noon - timedelta(days=rng.uniform(0.5, 5)) if expired else noon + timedelta(days=rng.uniform(1, 30))
        hits = rng.choice([0, 1, 2, 3, 4]) if i % 3 == 0 else rng.randint(5, 400)
        cache.append(
            (
                f"cache-{i:05d}",
                rng.choice(["query", "embedding", "search"]),
                hits,
                rng.randint(200, 8000),
                _ts(created),
                _ts(created + timedelta(days=rng.uniform(0, 3))),
                _ts(expires),
            )
        )
    conn.executemany("INSERT INTO cache_metadata VALUES (?, ?, ?, ?, ?, ?, ?)", cache)
    usage = []
    for day in range(150):
        d = (noon - timedelta(days=day)).date().isoformat()
        for endpoint in ("/search", "/index", "/embed"):
            usage.append((d, endpoint, rng.randint(100, 3000), rng.randint(1000, 90000), rng.randint(50, 2000)))
    conn.executemany(
        "INSERT INTO usage_log(date, endpoint, requests, tokens_saved, neurons_used) VALUES (?, ?, ?, ?, ?)", usage
    )
    events = []
    kinds = [
        ("failed_login", 150, 30, 401),
        ("api_key_abuse", 8, 30, 403),
        ("unauthorized", 40, 30, 401),
        ("forbidden", 25, 30, 403),
        ("rate_limited", 30, 30, 429),
        ("failed_login", 60, 90, 401),
    ]
    for kind, count, days, status in kinds:
        for _ in range(count):
            when = noon - timedelta(days=rng.uniform(0, days) if days == 30 else rng.uniform(31, days))
            events.append(
                (
                    kind,
                    f"203.0.113.{rng.randint(1, 254)}",
                    f"key-{rng.randint(1, 20):03d}",
                    status,
                    json.dumps({"path": rng.choice(["/search", "/admin", "/index"])}),
                    _ts(when),
                )
            )
    events.sort(key=lambda e: e[-1])
    conn.executemany(
        "INSERT INTO security_events(type, ip, api_key_id, status_code, details, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        events,
    )
    queries = [
        "SELECT * FROM document_chunks WHERE document_id = ?",
        "SELECT * FROM documents WHERE path = ?",
        "SELECT key FROM cache_metadata WHERE expires_at > ?",
        "SELECT COUNT(*) FROM usage_log WHERE date = ?",
        "SELECT * FROM chunks_fts WHERE chunks_fts MATCH ?",
    ]
    qlog = []
    for i in range(500):
        q = rng.choice(queries)
        slow = i % 25 == 0
        qlog.append(
            (
                q,
                rng.uniform(1200, 4000) if slow else rng.uniform(0.5, 40),
                rng.randint(0, 200),
                _ts(noon - timedelta(hours=rng.uniform(0, 24 * 14))),
            )
        )
    qlog.sort(key=lambda r: r[-1])
    conn.executemany("INSERT INTO query_log(query, duration_ms, rows, timestamp) VALUES (?, ?, ?, ?)", qlog)
    return {"cache_rows": len(cache), "usage_rows": len(usage), "security_events": len(events), "query_log": len(qlog)}


def _seed_documents(conn: sqlite3.Connection, rng: random.Random, noon: datetime, scale: int) -> list:
    """Documents, chunks (plus orphans), relationships (plus orphans) and the FTS index. Returns chunk tuples."""
    docs, chunks, rels = [], [], []
    n_docs = BASE_DOCS * scale
    for i in range(n_docs):
        repo_id, repo_name, _ = REPOS[i % len(REPOS)]
        # About two new documents a day over the last 60 days, older ones further back.
        created = noon - timedelta(days=(i % 120) / 2 + rng.uniform(0, 0.5))
        doc_id = f"doc-{i:07d}"
        path = f"src/{rng.choice(WORDS)}/{rng.choice(WORDS)}_{i}.ts"
        docs.append(
            (
                doc_id,
                path,
                f"{rng.choice(WORDS).title()} {rng.choice(WORDS)}",
                "typescript",
                rng.randint(500, 40000),
                hashlib.sha256(doc_id.encode()).digest(),
                _ts(created),
                _ts(created),
                repo_id,
            )
        )
        for c in range(CHUNKS_PER_DOC):
            text = _sentence(rng, 12 if scale > 1 else 40)
            chunks.append(
                (
                    f"chk-{i:07d}-{c:02d}",
                    doc_id,
                    c,
                    text,
                    len(text.split()),
                    f"chk-{i:07d}-{c:02d}",
                    embedding.MODEL,
                    _ts(created),
                    repo_name,
                    path,
                )
            )
    for j in range(ORPHAN_CHUNKS):
        text = _sentence(rng, 30)
        chunks.append(
            (
                f"chk-orphan-{j:03d}",
                f"doc-deleted-{j:03d}",
                0,
                text,
                len(text.split()),
                f"chk-orphan-{j:03d}",
                embedding.MODEL,
                _ts(noon - timedelta(days=20)),
                "prism/core",
                "deleted.ts",
            )
        )
    for _ in range(200 * scale):
        a, b = rng.randrange(n_docs), rng.randrange(n_docs)
        rels.append(
            (
                f"doc-{a:07d}",
                f"doc-{b:07d}",
                rng.choice(["imports", "references", "extends"]),
                round(rng.uniform(0.1, 1), 3),
                _ts(noon - timedelta(days=rng.uniform(0, 60))),
            )
        )
    for k in range(ORPHAN_RELATIONSHIPS):
        rels.append(
            (
                f"doc-{k:07d}" if k % 2 else f"doc-deleted-{k:03d}",
                f"doc-deleted-{k + 100:03d}" if k % 2 else f"doc-{k:07d}",
                "references",
                0.5,
                _ts(noon - timedelta(days=10)),
            )
        )
    conn.executemany(
        "INSERT INTO documents(id, path, title, language, size_bytes, fingerprint, created_at, updated_at, repo_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        docs,
    )
    conn.executemany("INSERT INTO document_chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (c[:8] for c in chunks))
    conn.executemany(
        "INSERT INTO document_relationships(source_document_id, target_document_id, relationship_type, weight, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        rels,
    )
    conn.executemany(
        "INSERT INTO chunks_fts(chunk_id, content) VALUES (?, ?)",
        ((c[0], c[3]) for c in chunks if not c[0].startswith("chk-orphan")),
    )
    return chunks


def _seed_vectors(lf, chunks: list, scale: int, rng: random.Random) -> int:
    """One vector per chunk, equal to the Workers AI embedding of the chunk's text."""
    lf.vectorize.create(lf.cfg.index_name, embedding.DIMS, "cosine", "PRISM chunk embeddings")
    _, idx = lf.vectorize.index(lf.cfg.index_name)
    vocab = {w: i for i, w in enumerate(WORDS)}
    vocab_matrix = np.stack([embedding.word_vector(w) for w in WORDS])
    with idx.lock, idx.conn() as c:
        c.execute("PRAGMA synchronous=OFF")
        c.execute("INSERT INTO meta_indexes VALUES ('repo', 'string')")
        batch = 20000
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            lengths = {len(ch[3].split()) for ch in part}
            if len(lengths) == 1:
                ids = np.array([[vocab[w] for w in ch[3].split()] for ch in part])
                vecs = embedding.embed_many_from_word_ids(vocab_matrix, ids)
            else:
                vecs = np.stack([embedding.embed(ch[3]) for ch in part])
            rows = [
                (
                    ch[0],
                    None,
                    vecs[i].astype("<f4").tobytes(),
                    json.dumps({"document_id": ch[1], "chunk_index": ch[2], "repo": ch[8], "path": ch[9]}),
                )
                for i, ch in enumerate(part)
            ]
            c.executemany("INSERT INTO vectors VALUES (?, ?, ?, ?)", rows)
        c.execute(
            "INSERT INTO mutations(mutation_id, created, kind, payload, applied) VALUES (?, ?, 'upsert', '[]', ?)",
            (f"seed-{rng.getrandbits(64):016x}", time.time(), time.time()),
        )
    return len(chunks)


def _seed_kv(lf, rng: random.Random, noon: datetime, scale: int) -> int:
    ns = lf.kv.create(lf.cfg.kv_title)["id"]
    now = int(time.time())
    rows = []
    for i in range(200 * scale):
        kind = ("query", "embedding", "search")[i % 3]
        value = json.dumps({"answer": _sentence(rng, 8), "tokens": rng.randint(50, 900)}).encode()
        expiration = now + rng.randint(3600, 30 * 86400) if i % 4 == 0 else None
        rows.append(
            (
                ns,
                f"cache:{kind}:{i:06d}",
                value,
                expiration,
                json.dumps({"type": kind, "hit_count": rng.randint(0, 300)}),
            )
        )
    rows.append((ns, "config:feature-flags", json.dumps({"rerank": True, "hybrid_search": False}).encode(), None, None))
    for j in range(2):
        rows.append(
            (
                ns,
                f"blob:thumbnail-{j}",
                bytes(range(256)) * (j + 1) + b"\x00\xff",
                None,
                json.dumps({"content_type": "image/png"}),
            )
        )
    with lf.kv.conn() as c:
        c.executemany("INSERT INTO pairs VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def _seed_workers(lf, noon: datetime) -> None:
    versions, deployments = [], []
    for n in range(3, 0, -1):  # newest first, as the API lists them
        created = noon - timedelta(days=7 * (3 - n) + 2)
        vid = f"{hashlib.md5(f'version-{n}'.encode()).hexdigest()[:8]}-0000-4000-8000-{n:012d}"
        versions.append(
            {
                "id": vid,
                "number": n,
                "metadata": {
                    "author_email": "devops@prism.example",
                    "author_id": "a1b2c3",
                    "created_on": created.isoformat().replace("+00:00", "Z"),
                    "modified_on": created.isoformat().replace("+00:00", "Z"),
                    "source": "wrangler",
                    "hasPreview": False,
                },
            }
        )
        deployments.append(
            {
                "id": f"{hashlib.md5(f'deploy-{n}'.encode()).hexdigest()[:8]}-1111-4000-8000-{n:012d}",
                "created_on": (created + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
                "source": "wrangler",
                "strategy": "percentage",
                "author_email": "devops@prism.example",
                "versions": [{"version_id": vid, "percentage": 100.0}],
                "annotations": {"workers/message": f"release {n}", "workers/triggered_by": "deployment"},
            }
        )
    lf.workers.save_scripts({lf.cfg.worker_name: {"versions": versions, "deployments": deployments}})
