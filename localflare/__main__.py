"""Command line: `python -m localflare serve ...` and `python -m localflare seed ...`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from .app import API_PREFIX, Config, LocalFlare
from .permissions import PERMISSIONS, parse_token
from .ratelimit import parse_rate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localflare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "seed"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", required=True, help="where state lives; a restart keeps it")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8787)
        p.add_argument("--public-url", default="", help="base URL clients use, if not http://HOST:PORT")
        p.add_argument("--account-id", default="0123456789abcdef0123456789abcdef")
        p.add_argument("--api-token", default="", help="default: a random token kept in DATA_DIR/api-token")
        p.add_argument(
            "--token",
            action="append",
            default=[],
            metavar="NAME=PERMISSIONS",
            help="a restricted token (repeatable): bearer token NAME holding only the comma-separated "
            f"permission groups ('all' for every one) of: {', '.join(PERMISSIONS)}",
        )
        p.add_argument("--seed", choices=["demo", "none"], default="none" if name == "serve" else "demo")
        p.add_argument("--scale", type=int, default=1, help="multiply the demo data (1667 gives over 1M vectors)")
        p.add_argument("--seed-anchor", type=date.fromisoformat, default=None, help="the seed's 'today' (YYYY-MM-DD)")
        p.add_argument("--faults", default="", help="fault SPEC, see localflare/README.md")
        p.add_argument("--rate-limit", default="1200/300", help="global API limit COUNT/SECONDS per token")
        p.add_argument("--graphql-rate-limit", default="300/300", help="GraphQL limit COUNT/SECONDS")
        p.add_argument("--mutation-lag", type=float, default=1.0, help="seconds before a Vectorize mutation applies")
        p.add_argument(
            "--export-min-seconds", type=float, default=0.5, help="how long a D1 export holds the database at least"
        )
        p.add_argument(
            "--export-poll-timeout", type=float, default=60.0, help="an export nobody polls for this long is cancelled"
        )
        p.add_argument("--signed-url-ttl", type=float, default=3600.0)
        p.add_argument("--no-time-travel", action="store_true", help="keep no D1 snapshots (for very large benchmarks)")
        p.add_argument("--time-travel-days", type=int, default=30)
        p.add_argument("--get-by-ids-max", type=int, default=100)
        p.add_argument("--record", default="", help="append every API exchange to this JSONL file")
    return parser


def make_config(args) -> Config:
    limit, window = parse_rate(args.rate_limit)
    tokens = dict(parse_token(spec) for spec in args.token)
    glimit, gwindow = parse_rate(args.graphql_rate_limit)
    return Config(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        public_url=args.public_url.rstrip("/"),
        account_id=args.account_id,
        api_token=args.api_token,
        rate_limit=limit,
        rate_window=window,
        graphql_rate_limit=glimit,
        graphql_rate_window=gwindow,
        mutation_lag=args.mutation_lag,
        export_min_seconds=args.export_min_seconds,
        export_poll_timeout=args.export_poll_timeout,
        signed_url_ttl=args.signed_url_ttl,
        time_travel=not args.no_time_travel,
        time_travel_days=args.time_travel_days,
        get_by_ids_max=args.get_by_ids_max,
        record_path=args.record,
        faults=args.faults,
        tokens=tokens,
    )


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = make_config(args)
    except ValueError as exc:
        parser.error(str(exc))
    lf = LocalFlare(cfg)
    if args.seed == "demo":
        from .seed import seed_demo

        seed_demo(lf, scale=args.scale, anchor=args.seed_anchor, log=lambda m: print(m, file=sys.stderr, flush=True))
    info = lf.info()
    (Path(cfg.data_dir) / "localflare.json").write_text(json.dumps({**info, "api_token": cfg.api_token}, indent=2))
    if args.command == "seed":
        return 0
    print(f"localflare {API_PREFIX} API:  {info['api_base_url']}", flush=True)
    print(f"localflare account id:  {cfg.account_id}", flush=True)
    print(f"localflare API token:   {cfg.api_token}", flush=True)
    print(f"PRISM Worker:           {info['worker_base_url']}", flush=True)
    import uvicorn

    uvicorn.run(lf, host=cfg.host, port=cfg.port, log_level="warning", access_log=False, timeout_keep_alive=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
