"""Every bad value of every Param of every DAG gets a clean refusal, and nothing changes.

Two places refuse, and the table says which for each value:
- "trigger": the DAG's own Param schema, where the API server checks it when the run is made
  (`create_dagrun`: the serialized DAG's params, deep-merged with the conf, validated). The UI form,
  the REST API, `airflow dags trigger --conf` and dag.test() all go through it; no run is created.
- "task": a value the schema cannot judge (an impossible or future date, a repo not in the config)
  reaches the DAG's validate task, which refuses with `refusing <action>: <reason>. Nothing was changed.`
  against a private localflare and the S3 stand-in, whose contents are compared before and after.
A few rows run end to end through dag.test() to show both places in a real run.
"""

from __future__ import annotations

import copy
import html
import re
from datetime import datetime, timedelta, timezone

import pytest
from dagtest import DAG_IDS, dag_of, run_only, states

NOW = datetime.now(timezone.utc)
SCRIPT, SQL, PATH = "<script>alert(1)</script>", "'; DROP TABLE documents; --", "../../etc/passwd"
LONG = "9" * 10_000
BIDI = "2026\u202e1101"  # a right-to-left override inside digits
FULLWIDTH, ARABIC = "２０２６１１０１", "٢٠٢٦١١٠١"
HOSTILE = [SCRIPT, SQL, PATH, LONG, BIDI, "", " ", "\n"]


def day(delta: int) -> str:
    return f"{NOW + timedelta(days=delta):%Y%m%d}"


def iso(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


NEXT_MONTH = f"{(NOW.replace(day=1) + timedelta(days=32)):%Y%m}"
DR_BASE = {
    "source": "s3",
    "backup_date": day(-1),
    "timestamp": None,
    "targets": ["d1", "vectorize", "kv"],
    "confirm": "RESTORE",
}
TT_BASE = {**DR_BASE, "source": "time_travel", "backup_date": None, "targets": ["d1"]}
REBUILD_BASE = {"confirm": "REBUILD", "reason": "table test"}

# (dag_id, param, bad value, the rest of the conf, where it is refused, what the refusal says)
T, K = "trigger", "task"
TABLE: list[tuple] = []


def rows(dag_id: str, param: str, values, base: dict | None = None, where: str = T, says: str = "") -> None:
    TABLE.extend((dag_id, param, v, base or {}, where, says) for v in values)


# ---- prism_disaster_recovery ---------------------------------------------------------------------
DR = "prism_disaster_recovery"
rows(DR, "source", ["tape", "S3", "s3\n", None, 1, ["s3"], *HOSTILE], DR_BASE)
rows(
    DR,
    "backup_date",
    [
        f"{day(-1)}\n",
        f"\n{day(-1)}",
        f"{day(-1)} ",
        FULLWIDTH,
        ARABIC,
        "2026-11-01",
        "2026111",
        "safety-20261101T000000",
        "daily/20261101",
        20261101,
        ["20261101"],
        *HOSTILE,
    ],
    DR_BASE,
)
rows(
    DR,
    "backup_date",
    [
        "20261399",
        "20260230",
        "20250229",
        "00000101",
        "202613",
        "202600",
        "safety-20261301T000000Z",
        "safety-20260101T250000Z",
        "safety-20260101T126000Z",
    ],
    DR_BASE,
    K,
    "is not a real date",
)
rows(
    DR,
    "backup_date",
    [day(2), day(400), NEXT_MONTH, "99991231", f"safety-{(NOW + timedelta(hours=1)):%Y%m%dT%H%M%S}Z"],
    DR_BASE,
    K,
    "is in the future",
)
rows(DR, "backup_date", ["20200101", day(0), "202001", "safety-20200101T000000Z"], DR_BASE, K, "does not exist")
rows(DR, "backup_date", [None], DR_BASE, K, "needs backup_date")
rows(
    DR,
    "timestamp",
    [
        f"{iso(-timedelta(hours=1))}\n",
        "yesterday",
        "2026-11-28T09:00:00",
        "2026-11-28",
        "١٧٠٠٠٠٠٠٠٠",
        "２０２６-11-28T09:00:00Z",
        "2026-11-28T09:00:00+0100",
        1764320400,
        *HOSTILE,
    ],
    TT_BASE,
)
rows(
    DR,
    "timestamp",
    ["2026-02-30T09:00:00Z", "2026-13-01T09:00:00Z", "2026-11-28T25:00:00Z", "2026-11-28T09:61:00Z"],
    TT_BASE,
    K,
    "is not a real time",
)
rows(DR, "timestamp", [iso(timedelta(days=1)), "2999-01-01T00:00:00Z"], TT_BASE, K, "is in the future")
rows(DR, "timestamp", [iso(-timedelta(days=31)), "2000-01-01T00:00:00Z"], TT_BASE, K, "outside the Time Travel window")
rows(DR, "timestamp", [None], TT_BASE, K, "needs timestamp")
rows(
    DR,
    "targets",
    [[], ["d1", "everything"], "d1", ["d1", "d1"], None, [1], ["D1"], ["d1\n"], [SCRIPT], [PATH]],
    DR_BASE,
)
rows(DR, "targets", [["d1", "vectorize", "kv"]], TT_BASE, K, "Time Travel restores D1 only")
rows(
    DR,
    "confirm",
    ["restore", "Restore", "RESTORE\n", " RESTORE", "RESTORE ", "ＲＥＳＴＯＲＥ", "yes", None, 1, True, *HOSTILE],
    DR_BASE,
)

# ---- prism_index_rebuild -------------------------------------------------------------------------
RB = "prism_index_rebuild"
rows(
    RB,
    "confirm",
    ["rebuild", "Rebuild", "REBUILD\n", " REBUILD", "ＲＥＢＵＩＬＤ", "yes", None, 1, *HOSTILE],
    REBUILD_BASE,
)
rows(
    RB,
    "reason",
    [
        None,
        1,
        ["why"],
        "x" * 501,
        LONG,
        "line one\nline two",
        "forged\r\nINFO - all good",
        "\x1b[31mred",
        "tab\there",
        "nul\x00",
    ],
    REBUILD_BASE,
)

# ---- prism_index_incremental ---------------------------------------------------------------------
INC = "prism_index_incremental"
rows(
    INC,
    "repos",
    [
        "prism/core",
        None,
        ["not a repo"],
        ["prism/core\n"],
        [PATH],
        [SCRIPT],
        [SQL],
        ["ｐｒｉｓｍ/core"],
        ["prism/core", "prism/core"],
        ["a/" + "b" * 300],
        [f"r{i}/x" for i in range(101)],
        [""],
        [1],
    ],
)
rows(INC, "repos", [["prism/unknown"], ["../.."], ["prism/Core"]], {}, K, "not in indexing.repos")
rows(
    INC,
    "since",
    [
        "last tuesday",
        "2026-11-01 00:00:00",
        "2026-11-01",
        f"{iso(-timedelta(days=1))}\n",
        "２０２６-11-01T00:00:00Z",
        1,
        *HOSTILE,
    ],
)
rows(INC, "since", ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z"], {}, K, "is not a real time")
rows(INC, "since", [iso(timedelta(days=1)), "2999-01-01T00:00:00Z"], {}, K, "is in the future")

# ---- the scheduled DAGs' Params (and the preflight's) --------------------------------------------
BOOL_BAD = ["true", "false", 1, 0, None, "yes", [], SCRIPT, ""]
rows("prism_daily", "dry_run", BOOL_BAD)
rows("prism_monthly", "run_day", [8, 0, -1, 32, "7", "07", 7.5, True, [7], "7\n", SCRIPT, SQL, LONG])
rows("prism_monthly", "run_dependency_update", BOOL_BAD)
rows("prism_quarterly", "quarter", [0, 5, -1, "1", 1.5, True, [1], SCRIPT, LONG])
rows("prism_quarterly", "run_restore_drill", BOOL_BAD)
rows("prism_preflight", "prove_writes", BOOL_BAD)


def case_id(row) -> str:
    """A test id that is the same in every xdist worker: values made from NOW differ between the workers'
    collections, so the id numbers the row and shows the value with its ASCII digits masked."""
    dag_id, param, value, _, where, _ = row
    text = re.sub(r"[0-9]", "#", repr(value))
    return f"{TABLE.index(row):03d}-{dag_id}-{param}-{where}-{text[:40]}" + (
        f"...{len(text)}" if len(text) > 40 else ""
    )


_SERVER_SIDE: dict = {}


def server_side(dag):
    """The DAG as the API server holds it (serialized and back), whose create_dagrun validates a conf."""
    from airflow.serialization.serialized_objects import DagSerialization

    if dag.dag_id not in _SERVER_SIDE:
        _SERVER_SIDE[dag.dag_id] = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return _SERVER_SIDE[dag.dag_id]


def trigger_check(dag, conf: dict) -> None:
    """What create_dagrun does with a conf before any run exists (serialization/definitions/dag.py)."""
    server_side(dag).params.deep_merge(conf).validate()


# ---- the table covers every Param ----------------------------------------------------------------


def test_the_table_covers_every_param_of_every_dag():
    declared = {(d, p) for d in DAG_IDS for p in dag_of(d).params}
    covered = {(d, p) for d, p, *_ in TABLE}
    assert declared - covered == set(), "a Param without bad values in the table"
    assert covered - declared == set(), "the table names a Param no DAG declares"
    for dag_id in DAG_IDS:  # each DAG's good conf passes the schema: the table's rows differ in one value
        base = {"prism_disaster_recovery": DR_BASE, "prism_index_rebuild": REBUILD_BASE}.get(dag_id, {})
        trigger_check(dag_of(dag_id), base)


# ---- refused when the run is made ----------------------------------------------------------------


@pytest.mark.parametrize("row", [r for r in TABLE if r[4] == T], ids=case_id)
def test_refused_by_the_param_schema_when_the_run_is_made(row):
    from airflow.exceptions import ParamValidationError

    dag_id, param, value, base, _, _ = row
    dag = dag_of(dag_id)
    with pytest.raises(ParamValidationError, match=f"^Invalid input for param {param}: "):
        trigger_check(dag, {**base, param: value})
    with pytest.raises(ParamValidationError):  # the SDK's own check agrees (dag.test, the task runner)
        copy.deepcopy(dag.params)[param] = value


# ---- refused by the validate task, nothing changed -------------------------------------------------

VALIDATE = {DR: "validate", RB: "validate_params", INC: "validate_params"}
ACTION = {DR: "to restore", RB: "to rebuild", INC: "to index"}


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory, exchanges_file, s3_server):
    """One private seeded localflare for the task rows (they only read), and a bucket of their own."""
    import uuid

    from localflare import testing

    server = testing.start(
        tmp_path_factory.mktemp("lf-params"), "--seed", "demo", "--record", str(exchanges_file), "--mutation-lag", "0.2"
    )
    bucket = f"prism-params-{uuid.uuid4().hex[:10]}"
    s3_server.create_bucket(bucket)
    yield server, bucket
    server.stop()


@pytest.fixture
def connected(stand_ins, connect, s3, configure):
    server, bucket = stand_ins
    server.admin("DELETE", "ratelimit")  # the module's own server: each test starts with a fresh API budget
    connect(server, budget={"bulk_rps": 0})
    configure({"backups": {"bucket": bucket}, "indexing": {"repos": ["prism/core", "prism/docs", "prism/worker"]}})
    return server, bucket, s3


def fingerprint(server, bucket: str, s3) -> dict:
    """Everything a refused input could have changed: every D1 table's rows, the vectors, the KV keys,
    the databases, indexes and namespaces of the account, and the bucket's objects."""
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.kv import KVHook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
    from airflow_provider_cloudflare.sqldump import quote_ident

    def quote_literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    d1, kv, vec = D1Hook(), KVHook(), VectorizeHook()
    # Every table's row count in one query: the fingerprint stays a few API calls under the rate limit.
    tables = [name for name, _ in d1.user_tables(server.d1_id)]
    counts = " UNION ALL ".join(f"SELECT {quote_literal(t)} AS t, COUNT(*) AS n FROM {quote_ident(t)}" for t in tables)
    return {
        "tables": {r["t"]: r["n"] for r in d1.rows(server.d1_id, counts)},
        "vectors": vec.info(server.index_name)["vectorCount"],
        "kv": sorted(k["name"] for k in kv.list_keys(server.kv_id)),
        "databases": sorted(d["uuid"] for d in d1.list_databases()),
        "indexes": sorted(i["name"] for i in vec.list_indexes()),
        "namespaces": sorted(n["id"] for n in kv.list_namespaces()),
        "objects": sorted(s3.list_keys(bucket) or []),
    }


def refused_shape(action: str, text: str) -> None:
    assert re.fullmatch(rf"refusing {action}: .+\. Nothing was changed\.", text, re.S), text
    assert text.lower().count("nothing was changed") == 1, text


@pytest.mark.parametrize("row", [r for r in TABLE if r[4] == K], ids=case_id)
def test_refused_by_the_validate_task_and_nothing_changes(row, connected):
    from prism.refusals import Refused

    dag_id, param, value, base, _, says = row
    dag = dag_of(dag_id)
    conf = {**base, param: value}
    trigger_check(dag, conf)  # the schema lets it through: only the task can tell
    server, bucket, s3 = connected
    before = fingerprint(server, bucket, s3)
    params = {**dag.params.dump(), **conf}
    with pytest.raises(Refused) as refused:
        dag.get_task(VALIDATE[dag_id]).python_callable(params=params)
    text = str(refused.value)
    refused_shape(ACTION[dag_id], text)
    assert says in text
    assert len(text) < 1000  # a long value is cut, not echoed whole
    assert fingerprint(server, bucket, s3) == before


# ---- accepted: hostile text in a free-text field is only text ---------------------------------------


@pytest.mark.parametrize("reason", [SCRIPT, SQL, PATH, "Grüße, 再建, émoji 🙂", "x" * 500])
def test_a_free_text_reason_is_kept_as_quoted_text(reason, connected, capsys):
    """`reason` is logged for the maintenance record: any one line of text is accepted, printed quoted
    (repr), and runs nothing."""
    dag = dag_of(RB)
    trigger_check(dag, {**REBUILD_BASE, "reason": reason})
    repos = dag.get_task("validate_params").python_callable(params={**REBUILD_BASE, "reason": reason})
    assert repos == ["prism/core", "prism/docs", "prism/worker"]
    assert repr(reason)[:80] in capsys.readouterr().out


@pytest.mark.parametrize(
    "value",
    [day(-1), day(0), "202001", f"{NOW:%Y%m}", "20240229", f"safety-{(NOW - timedelta(hours=1)):%Y%m%dT%H%M%S}Z"],
    ids=["yesterday", "today", "2020-01", "this-month", "leap-day", "safety-an-hour-ago"],
)
def test_past_and_present_backup_names_pass_the_input_check(value):
    """The other side of the table: real names in the past or today are not refused by the checks."""
    from prism.recovery.validation import check_params

    dag = dag_of(DR)
    trigger_check(dag, {**DR_BASE, "backup_date": value})
    assert check_params({**DR_BASE, "backup_date": value}, NOW, 30)["backup_id"] == value


# ---- end to end: real runs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dag_id, conf",
    [
        (DR, {**DR_BASE, "backup_date": f"{day(-1)}\n"}),
        (DR, {**DR_BASE, "backup_date": FULLWIDTH}),
        (DR, {**DR_BASE, "confirm": "restore"}),
        (RB, {**REBUILD_BASE, "confirm": "rebuild"}),
        (INC, {"since": "2026-11-01T00:00:00Z\n"}),
        ("prism_monthly", {"run_day": "7"}),
    ],
    ids=[
        "dr-newline",
        "dr-fullwidth",
        "dr-lowercase",
        "rebuild-lowercase",
        "incremental-newline",
        "monthly-string-day",
    ],
)
def test_a_real_trigger_with_a_bad_param_creates_no_run(dag_id, conf, connected, airflow_db):
    from airflow.exceptions import ParamValidationError
    from airflow.models.dagrun import DagRun

    server, bucket, s3 = connected
    before = fingerprint(server, bucket, s3)
    dag = dag_of(dag_id)
    runs = len(DagRun.find(dag_id=dag_id))
    with pytest.raises(ParamValidationError, match="Invalid input for param"):
        dag.test(run_conf=conf)
    assert len(DagRun.find(dag_id=dag_id)) == runs
    assert fingerprint(server, bucket, s3) == before


@pytest.mark.parametrize(
    "dag_id, conf, says",
    [
        (DR, {**DR_BASE, "backup_date": "20261399"}, "'20261399' is not a real date"),
        (DR, {**DR_BASE, "backup_date": day(3)}, "is in the future"),
        (INC, {"since": "2026-02-30T00:00:00Z"}, "is not a real time"),
    ],
    ids=["dr-impossible-date", "dr-future-date", "incremental-impossible-since"],
)
def test_a_real_run_stops_at_validate_with_the_refusal(dag_id, conf, says, connected, airflow_db, alerts):
    server, bucket, s3 = connected
    before = fingerprint(server, bucket, s3)
    dag = dag_of(dag_id)
    run = run_only(dag, f"^{VALIDATE[dag_id]}$", run_conf=conf)
    assert run.state == "failed"
    got = states(run)
    assert got.pop(VALIDATE[dag_id]) == "failed"
    assert set(got.values()) <= {"upstream_failed"}, got  # nothing after validate ran
    assert len(alerts) == 1
    text = html.unescape(alerts[0]).split("Refused: ", 1)[1].strip()
    refused_shape(ACTION[dag_id], text)
    assert says in text
    assert fingerprint(server, bucket, s3) == before
