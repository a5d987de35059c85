"""``benchmarks/transit.py`` must not rot: a tiny run end to end (no timing is asserted)."""

from __future__ import annotations

import pytest

from benchmarks import transit

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_quick_transit_benchmark_measures_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    rows = await transit.measure(quick=True, concurrency=4, seconds=0.1)
    assert {(r["scheme"], r["mode"]) for r in rows} == {
        (scheme, mode) for scheme in transit.SCHEMES for mode in ("kv", "transit", "transit-hvac")
    }
    for row in rows:
        assert row["median_us"] > 0 and row["signs_per_s_c1"] > 0 and row["signs_per_s_c4"] > 0
    transit.print_table(rows, 4)
    assert "Transit adds" in capsys.readouterr().out
