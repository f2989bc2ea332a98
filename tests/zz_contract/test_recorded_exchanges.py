"""Every API exchange of the whole test session, checked against Cloudflare's OpenAPI spec.

All localflare servers that the fixtures start append to one session-wide recording (`exchanges_file`).
pytest collects test directories alphabetically and this one sorts last, so by the time it runs the
recording holds what every other test sent: the SDK tests, the hooks and DAG tests, and the fault tests.
tests/contract/openapi_validation.py explains what counts as a violation and lists the tolerated
deviations of the 2024 spec.
"""

from __future__ import annotations

import pytest

from tests.contract.openapi_validation import ContractChecker, load_exchanges


def test_every_recorded_exchange_matches_the_spec(exchanges_file):
    exchanges = load_exchanges(exchanges_file)
    if not exchanges:
        pytest.skip(f"no API exchange was recorded in {exchanges_file}: this test checks what the other tests of "
                    "the session sent, so run it together with them")
    report = ContractChecker().check_all(exchanges)
    print(f"recording: {exchanges_file}\n{report.format(limit=100)}")
    assert report.covered, "no recorded exchange belongs to an operation of the spec"
    assert not report.violations, f"exchanges in {exchanges_file} break the OpenAPI spec:\n{report.format()}"
