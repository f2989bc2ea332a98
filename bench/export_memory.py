"""Benchmark: exporting N vectors keeps the exporting process's memory flat.

Seeds a localflare with about N vectors (default 200,000), exports them through
VectorizeHook.export_vectors into a gzip artifact, and samples the exporter's RSS as the count
grows. Also reports calls per vector (list and get_by_ids) and throughput.

    python bench/export_memory.py [--vectors 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


class SamplingSink:
    """A binary sink that records RSS each time another `every` lines have gone through."""

    def __init__(self, inner, every: int):
        self.inner = inner
        self.every = every
        self.lines = 0
        self.samples = []
        self.proc = psutil.Process()

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        if self.lines % self.every == 0:
            self.samples.append((self.lines, round(self.proc.memory_info().rss / 2**20, 1)))
        return self.inner.write(data)


def main() -> int:
    from localflare import testing
    from localflare.seed import BASE_DOCS, CHUNKS_PER_DOC

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vectors", type=int, default=200_000)
    args = parser.parse_args()
    scale = max(1, round(args.vectors / (BASE_DOCS * CHUNKS_PER_DOC)))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        server = testing.start(
            Path(tmp) / "lf",
            "--seed",
            "demo",
            "--scale",
            str(scale),
            "--no-time-travel",
            "--rate-limit",
            "100000000/300",
            timeout=1800,
        )
        seed_s = time.monotonic() - started
        try:
            os.environ["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"] = json.dumps(
                {
                    "conn_type": "generic",
                    "password": server.token,
                    "extra": {"account_id": server.account_id, "base_url": server.api_url, "budget": {"bulk_rps": 0}},
                }
            )
            from airflow_provider_cloudflare.artifacts import GzipArtifact
            from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

            hook = VectorizeHook()
            before = server.counters()
            baseline = psutil.Process().memory_info().rss / 2**20
            started = time.monotonic()
            with GzipArtifact(Path(tmp) / "vectors.ndjson.gz") as art:
                sink = SamplingSink(art, every=25_000)
                export = hook.export_vectors(server.index_name, sink)
                stats = art.close()
            seconds = time.monotonic() - started
            after = server.counters()
        finally:
            server.stop()
    calls = {k.split("/")[-1]: after.get(k, 0) - before.get(k, 0) for k in after if "vectorize" in k}
    rss = [mb for _, mb in sink.samples]
    print(
        json.dumps(
            {
                "vectors": export["count"],
                "seed_seconds": round(seed_s),
                "export_seconds": round(seconds, 1),
                "vectors_per_second": round(export["count"] / seconds),
                "gzip_mb": round(stats["bytes"] / 2**20, 1),
                "rss_baseline_mb": round(baseline, 1),
                "rss_samples_mb": sink.samples,
                "rss_growth_first_to_last_sample_mb": round(rss[-1] - rss[0], 1) if rss else None,
                "calls": calls,
                "list_calls_per_1000_vectors": round(1000 * calls.get("list", 0) / export["count"], 2),
                "get_by_ids_calls_per_100_vectors": round(100 * calls.get("get_by_ids", 0) / export["count"], 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
