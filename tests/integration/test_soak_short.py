"""The soak script, short (CI): mixed traffic through a real serve process; descriptors
and memory stay flat and no request ends in a 5xx. The long run is
``python -m benchmarks.soak`` (default three minutes)."""

from __future__ import annotations

from benchmarks.soak import soak


async def test_short_soak_stays_flat() -> None:
    result = await soak(duration=4, rate=60, warmup=2)
    statuses = result["statuses"]
    assert result["requests"] == 240
    assert not any(code >= 500 or code == 0 for code in statuses)  # type: ignore[attr-defined]
    assert {200, 400, 401, 403, 429} <= set(statuses)  # type: ignore[arg-type]
    assert result["fds_after"] <= result["fds_before"] + 2  # type: ignore[operator]
    assert result["rss_growth_kb"] < 30 * 1024  # type: ignore[operator]
