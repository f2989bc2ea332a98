"""A small stand-in for PRISM's indexer and embedder (`npm run index` / `npm run embed`).

The Airflow DAGs run PRISM's commands as subprocesses; this package lets them run end to end in the
demo and the tests, against localflare or a real account:

    python -m prism_demo_indexer index --repo prism/core [--since ISO] [--rebuild]
    python -m prism_demo_indexer embed --repo prism/core [--since ISO] [--rebuild]

`index` writes the repository's files (deterministic synthetic ones, see `corpus`) into D1 as
documents and chunks through D1Hook. `embed` embeds the repository's chunks that have no vector yet
with Workers AI and upserts them into Vectorize, then records `document_chunks.vector_id`. Both
print one JSON summary line last. They read the Cloudflare connection the way the hooks do
(`AIRFLOW_CONN_CLOUDFLARE_DEFAULT`), so `plugins/` must be on PYTHONPATH.
"""
