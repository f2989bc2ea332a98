"""Every API exchange of the whole test session, checked against Cloudflare's OpenAPI spec.

All localflare servers that the fixtures start append to a recording. In a plain `pytest` run that is
one session-wide file (`exchanges_file`), and this directory sorts last, so it runs after every other
test. `make test` runs the suite in parallel with LOCALFLARE_RECORD_DIR set (a file per worker) and
then runs this test alone, over every file in that directory.
tests/contract/openapi_validation.py explains what counts as a violation and lists the tolerated
deviations of the 2024 spec.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.contract.openapi_validation import ContractChecker, load_exchanges


def test_every_recorded_exchange_matches_the_spec(exchanges_file):
    record_dir = os.environ.get("LOCALFLARE_RECORD_DIR")
    files = sorted(Path(record_dir).glob("exchanges-*.jsonl")) if record_dir else [exchanges_file]
    exchanges = [e for f in files for e in load_exchanges(f)]
    exchanges_file = ", ".join(str(f) for f in files)
    if not exchanges:
        pytest.skip(
            f"no API exchange was recorded in {exchanges_file}: this test checks what the other tests of "
            "the session sent, so run it together with them"
        )
    report = ContractChecker().check_all(exchanges)
    print(f"recording: {exchanges_file}\n{report.format(limit=100)}")
    assert report.covered, "no recorded exchange belongs to an operation of the spec"
    assert not report.violations, f"exchanges in {exchanges_file} break the OpenAPI spec:\n{report.format()}"
