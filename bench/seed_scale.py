"""Benchmark: seed localflare at a scale of over a million vectors and report time, size and memory.

Usage: python bench/seed_scale.py [--scale 1667] [--data-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localflare.app import Config, LocalFlare  # noqa: E402
from localflare.seed import seed_demo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1667)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--keep", action="store_true", help="keep the seeded data directory")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="lf-scale-"))
    started = time.monotonic()
    lf = LocalFlare(Config(data_dir=str(data_dir), time_travel=False))
    summary = seed_demo(lf, scale=args.scale, log=lambda m: None)
    seconds = time.monotonic() - started
    size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    result = {
        "scale": args.scale,
        "vectors": summary["vectors"],
        "chunks": summary["chunks"],
        "kv_keys": summary["kv_keys"],
        "seconds": round(seconds, 1),
        "vectors_per_second": round(summary["vectors"] / seconds),
        "data_dir_mb": round(size / 2**20),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=2))
    if not args.keep and not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
