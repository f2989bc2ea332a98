"""Cut Cloudflare's 2024-08-06 OpenAPI spec down to the operations localflare serves.

The full spec (cloudflare/api-schemas `openapi.json`, OpenAPI 3.0.3, about 4 MB) is too big to vendor
into the tests. This script keeps only the operations listed in SERVED below, plus every component they
reach through `$ref` (transitively) and the security schemes they name, and writes the result to
tests/contract/cloudflare-openapi-prism.json (sorted keys, indent=1, so reruns give identical bytes).
tests/contract/test_openapi_contract.py checks that the committed file is up to date.

    python scripts/prune_openapi.py [SPEC] [--out FILE]

Newer than this spec, and so covered only by the SDK tests (each checked against the 2024 file):
  - D1 `/query` and `/raw` bodies: only `{sql, params}`; the `{batch: [...]}` form is absent.
  - D1 `time_travel/bookmark` and `time_travel/restore`: no such paths.
  - Vectorize `GET .../indexes/{index_name}/list` (list_vectors): no such path.
  - KV `POST .../namespaces/{namespace_id}/bulk/get`: no such path.
  - Vectorize `metadata_index/list`: the spec has it as POST only; the API and localflare use GET.
/graphql is not in the spec at all, and neither is `/accounts/{account_id}/tokens/verify`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / ".." / "shared" / "reference" / "cloudflare-openapi-2024-08-06.json"
DEFAULT_OUT = ROOT / "tests" / "contract" / "cloudflare-openapi-prism.json"

ACCT = "/accounts/{account_id}"
D1 = ACCT + "/d1/database"
VEC = ACCT + "/vectorize/v2/indexes"
KV = ACCT + "/storage/kv/namespaces"
SCRIPT = ACCT + "/workers/scripts/{script_name}"

# path -> the methods localflare answers there (see the routes() of localflare/d1.py, vectorize.py,
# kv.py and workers.py). Operations the spec has but localflare does not serve (KV namespace rename,
# deployment and version uploads, the POST form of metadata_index/list) are left out on purpose.
SERVED = {
    ACCT: ("get",),  # Account Details: the connection test and the preflight prove the account id
    D1: ("get", "post"),
    D1 + "/{database_id}": ("get", "delete"),
    D1 + "/{database_id}/query": ("post",),
    D1 + "/{database_id}/raw": ("post",),
    D1 + "/{database_id}/export": ("post",),
    D1 + "/{database_id}/import": ("post",),
    VEC: ("get", "post"),
    VEC + "/{index_name}": ("get", "delete"),
    VEC + "/{index_name}/info": ("get",),
    VEC + "/{index_name}/insert": ("post",),
    VEC + "/{index_name}/upsert": ("post",),
    VEC + "/{index_name}/query": ("post",),
    VEC + "/{index_name}/get_by_ids": ("post",),
    VEC + "/{index_name}/delete_by_ids": ("post",),
    VEC + "/{index_name}/metadata_index/create": ("post",),
    VEC + "/{index_name}/metadata_index/delete": ("post",),
    VEC + "/{index_name}/metadata_index/list": ("get",),  # the spec only has POST: dropped, see above
    VEC + "/{index_name}/list": ("get",),  # not in the spec
    KV: ("get", "post"),
    KV + "/{namespace_id}": ("get", "delete"),
    KV + "/{namespace_id}/keys": ("get",),
    KV + "/{namespace_id}/values/{key_name}": ("get", "put", "delete"),
    KV + "/{namespace_id}/metadata/{key_name}": ("get",),
    KV + "/{namespace_id}/bulk": ("put", "delete"),
    KV + "/{namespace_id}/bulk/delete": ("post",),
    KV + "/{namespace_id}/bulk/get": ("post",),  # not in the spec
    SCRIPT + "/deployments": ("get",),
    SCRIPT + "/versions": ("get",),
    SCRIPT + "/versions/{version_id}": ("get",),
    # The spec has one path per model; localflare runs only this embedding model.
    ACCT + "/ai/run/@cf/baai/bge-small-en-v1.5": ("post",),
    "/user/tokens/verify": ("get",),
    # What wrangler asks first: `whoami`, and the account choice without CLOUDFLARE_ACCOUNT_ID.
    "/user": ("get",),
    "/memberships": ("get",),
    "/accounts": ("get",),
}

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _refs(node):
    """Yield every `$ref` string anywhere inside a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(spec: dict, ref: str):
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def prune(spec: dict) -> dict:
    """Return a new spec with only the SERVED operations and the components they need."""
    paths = {}
    for path, methods in SERVED.items():
        item = spec["paths"].get(path, {})
        kept = {m: item[m] for m in methods if m in item}
        if kept:
            # keep path-level fields (shared parameters etc.), drop operations localflare lacks
            paths[path] = {k: v for k, v in item.items() if k not in METHODS} | kept

    # The $ref closure: follow references out of the kept paths until nothing new turns up.
    wanted, todo = set(), list(_refs(paths))
    while todo:
        ref = todo.pop()
        if ref not in wanted:
            wanted.add(ref)
            todo.extend(_refs(_resolve(spec, ref)))
    components: dict = {}
    for ref in wanted:
        _, _, kind, name = ref.split("/", 3)
        components.setdefault(kind, {})[name] = _resolve(spec, ref)

    # Security schemes are named, not $ref'd: keep those any kept requirement mentions.
    requirements = list(spec.get("security", []))
    for item in paths.values():
        requirements += [r for m in METHODS for r in item.get(m, {}).get("security", [])]
    schemes = spec.get("components", {}).get("securitySchemes", {})
    used = {name for req in requirements for name in req}
    if used:
        components["securitySchemes"] = {n: schemes[n] for n in sorted(used)}

    out = {key: spec[key] for key in ("openapi", "info", "servers", "security") if key in spec}
    out["paths"] = paths
    out["components"] = components
    return out


def render(pruned: dict) -> str:
    return json.dumps(pruned, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="the full Cloudflare OpenAPI JSON")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the pruned spec")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    pruned = prune(spec)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(pruned), encoding="utf-8")
    ops = sum(1 for item in pruned["paths"].values() for m in item if m in METHODS)
    print(f"wrote {args.out}: {ops} operations, {sum(map(len, pruned['components'].values()))} components")
    return 0


if __name__ == "__main__":
    sys.exit(main())
