"""Each simulated-venue test module defines its ``sim`` fixture; this drives it in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from proxy.sim.base import SimVenue


@pytest.fixture
async def client(sim: SimVenue) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url="http://sim") as client:
        yield client
