"""The README is a short front door to docs/: it stays under 150 lines, links every page of docs/, and no
relative link in it or in docs/ is dead (anchors included). What the docs state about the code is
checked against the code: the token's permission groups per DAG (localflare/permissions.py and the
preflight's list), the demo names to change (include/prism.config.json), the Worker contract (what
localflare's Worker serves) and the backfill dates of the runbook (Airflow's own run selection)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 150
# Files a link may point at before they exist, each with what generates it.
GENERATED = {"docs/img/dashboard.png": "make screenshots (the dashboard's browser test)"}

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _prose(text: str) -> str:
    """The text without fenced blocks and code spans: links shown as code are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text()))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            slug = _slug(match.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) < MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_links_every_page_of_docs():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in _links(README) if _relative(t) and t[0] != "#"}
    missing = [p.relative_to(ROOT).as_posix() for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    dead = []
    for target in _links(page):
        if not _relative(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page.resolve()
        rel = dest.relative_to(ROOT).as_posix() if dest.is_relative_to(ROOT) else str(dest)
        if not dest.exists():
            if rel not in GENERATED:
                dead.append(f"{target} (no file {rel})")
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            dead.append(f"{target} (no heading #{anchor} in {rel})")
    assert not dead, f"{page.relative_to(ROOT)}: dead links: {dead}"


def test_generated_targets_are_linked_and_named():
    # The allow-list must not outlive its use: each generated file is linked from some page.
    linked = set()
    for page in PAGES:
        for target in _links(page):
            if _relative(target) and target.split("#")[0]:
                dest = (page.parent / target.split("#")[0]).resolve()
                if dest.is_relative_to(ROOT):
                    linked.add(dest.relative_to(ROOT).as_posix())
    assert set(GENERATED) <= linked, set(GENERATED) - linked


def test_the_link_checker_catches_dead_links_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Step 1: `make demo`, then go\n")
    page.write_text(
        "[ok](other.md#step-1-make-demo-then-go) [bad](other.md#nope) [gone](missing.md) "
        "`[code](not-a-link.md)` [web](https://example.com/x.md) [self](#page)\n\n# Page\n"
    )
    targets = _links(page)
    assert "not-a-link.md" not in targets and "https://example.com/x.md" in targets
    assert "step-1-make-demo-then-go" in _anchors(tmp_path / "other.md")
    assert "nope" not in _anchors(tmp_path / "other.md") and "page" in _anchors(page)


# ---- what the docs say about the code -------------------------------------------------------------
def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    rest = text[start + len(heading) :]
    nxt = re.search(r"^#{1,3} ", rest, re.M)
    return rest[: nxt.start()] if nxt else rest


def _table(section: str) -> list[list[str]]:
    """The section's first table, header row included."""
    rows: list[str] = []
    for line in section.splitlines():
        if line.startswith("| "):
            rows.append(line)
        elif rows and not line.startswith("|---"):
            break
    return [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]


def _permission_matrix() -> dict[str, set[str]]:
    rows = _table(_section(DOCS / "production-setup.md", "### Which DAG needs which group"))
    header, body = rows[0], rows[1:]
    groups: dict[str, set[str]] = {}
    for cells in body:
        dag = cells[0].strip("`")
        groups[dag] = set()
        for column, cell in zip(header[1:], cells[1:]):
            for access in ("Read", "Edit"):
                if re.search(rf"\b{access}\b", cell):
                    groups[dag].add(column if column.endswith(" Read") else f"{column} {access}")
    return groups


def test_the_permission_matrix_names_every_dag_and_only_real_groups():
    from localflare.permissions import PERMISSIONS

    matrix = _permission_matrix()
    assert set(matrix) == {p.stem for p in (ROOT / "dags").glob("prism_*.py")}
    named = set().union(*matrix.values())
    assert named <= set(PERMISSIONS), named - set(PERMISSIONS)
    assert all(any(g.startswith("D1 ") for g in groups) for groups in matrix.values()), "every DAG finds D1"


def test_every_group_the_preflight_checks_is_documented_and_in_the_readme():
    from prism.preflight import PERMISSIONS as PREFLIGHT

    named = set().union(*_permission_matrix().values())
    assert set(PREFLIGHT) == named
    usage = _section(DOCS / "production-setup.md", "What each group is used for:")
    assert set(PREFLIGHT) <= set(re.findall(r"^\| \*\*(.+?)\*\* \|", usage, re.M))
    readme = " ".join(README.read_text().split())
    together = re.search(r"All DAGs together: (.+?)\. ", readme).group(1)
    assert set(together.split(", ")) == set(PREFLIGHT)


def test_the_demo_names_are_flagged_as_names_to_change():
    config = json.loads((ROOT / "include" / "prism.config.json").read_text())
    names = {
        f"cloudflare.{k}": config["cloudflare"][k]
        for k in ("d1_database", "vectorize_index", "kv_namespace", "worker_name")
    }
    names["backups.bucket"] = config["backups"]["bucket"]
    flagged = _section(DOCS / "configuration.md", "## Names to change")
    checklist = _section(README, "## Before production")
    for key, value in names.items():
        assert f"| `{key}` | `{value}` |" in flagged, key
        assert f"`{value}`" in checklist, value


def _paths(obj, prefix="") -> set[str]:
    if not isinstance(obj, dict) or prefix == "checks":  # checks: free-form names, one per dependency
        return {prefix}
    out = set()
    for key, value in obj.items():
        out |= _paths(value, f"{prefix}.{key}" if prefix else key)
    return out


def test_the_worker_contract_matches_the_reference_worker(lf):
    doc = (DOCS / "worker-contract.md").read_text()
    health_example, metrics_example = (json.loads(b) for b in re.findall(r"^```json\n(.*?)^```", doc, re.M | re.S))
    health = requests.get(f"{lf.worker_url}/health", timeout=10)
    metrics = requests.get(f"{lf.worker_url}/metrics", params={"period": "24h"}, timeout=10)
    assert health.status_code == 200 and metrics.status_code == 200
    assert _paths(health_example) == _paths(health.json())
    assert _paths(metrics_example) == _paths(metrics.json())
    # Every field served is named in the prose or the tables, in a code span.
    spans = " ".join(re.findall(r"`([^`\n]+)`", FENCE.sub("", doc)))
    served = _paths(metrics.json()) | _paths(health.json())
    missing = [p for p in served if not re.search(rf"\b{re.escape(p.split('.')[-1])}\b", spans)]
    assert not missing, missing


def test_the_backfill_runbook_selects_the_schedule_slots_it_names():
    """`--from-date/--to-date` pick runs by schedule slot (run_after); logical_date is a period earlier."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    section = _section(DOCS / "runbooks.md", "## Backfill after an outage")
    commands = re.findall(r"--dag-id (\S+)\s+--from-date (\S+) --to-date (\S+)", section)
    assert {c[0] for c in commands} == {"prism_daily", "prism_weekly"}
    for dag_id, start, end in commands:
        bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
        timetable = coerce_to_core_timetable(bag.dags[dag_id].timetable)
        first, last = (datetime.fromisoformat(d.replace("Z", "+00:00")) for d in (start, end))
        restriction, info, infos = TimeRestriction(first, last, catchup=True), None, []
        while info := timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction):
            infos.append(info)
        assert infos[0].run_after == first and infos[-1].run_after == last, dag_id
        for info in infos:
            # The slot is the end of the data interval; Airflow's logical_date is its start.
            assert info.data_interval.end == info.run_after
            assert info.logical_date == info.data_interval.start < info.run_after
            assert re.search(rf"\b{info.run_after.day}\b", section), info.run_after
        expected = {"prism_daily": "three daily runs", "prism_weekly": "weekly runs of the slots 22 and 29"}[dag_id]
        assert expected in " ".join(section.split()), expected
        assert len(infos) == {"prism_daily": 3, "prism_weekly": 2}[dag_id]
