"""EVEDEX sessions shared by replicas through a real Redis (``proxy.sessions_redis``).

Two ``EvedexSigner`` instances stand for two replicas; the simulated EVEDEX (in-process,
verifying SIWE and rotating single-use refresh tokens) counts logins and refreshes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from proxy.clock import FakeClock
from proxy.credentials.base import Credentials
from proxy.credentials.memory import MemoryStore
from proxy.ratelimit_redis import make_client
from proxy.signers.base import OutgoingRequest, SignContext, UpstreamReply
from proxy.signers.evedex import EvedexSigner
from proxy.sim.evedex import EvedexSim, create_app
from tests import vectors
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRADING, AUTH = "http://trading.evedex.test", "http://auth.evedex.test"
KEY: str = vectors.vector("evedex", "siwe_login")["inputs"]["private_key"]
ADDRESS: str = vectors.vector("evedex", "siwe_login")["inputs"]["address"]
CREDS = Credentials({"wallet_private_key": KEY})
ACCESS_TTL_S = 300
SESSION_KEY = {"session_encryption_key": base64.b64encode(bytes(range(32))).decode()}
ME = OutgoingRequest("GET", "/api/user/me", (("accept", "application/json"),))


class SimSend:
    """The pipeline's ``send`` against the in-process sim; ``slow`` delays chosen paths."""

    def __init__(self, sim: EvedexSim, client: httpx.AsyncClient) -> None:
        self.sim, self.client = sim, client
        self.slow: dict[str, float] = {}
        self.paths: list[str] = []

    async def __call__(self, request: OutgoingRequest) -> UpstreamReply:
        self.paths.append(request.path)
        await asyncio.sleep(self.slow.get(request.path, 0))
        url = (request.origin or TRADING) + request.target
        response = await self.client.request(
            request.method, url, headers=list(request.headers), content=request.body
        )
        return UpstreamReply(response.status_code, tuple(response.headers.items()), response.content)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> EvedexSim:
    return create_app({ADDRESS: {"wallet_private_key": KEY}}, clock, access_ttl_s=ACCESS_TTL_S)


@pytest_asyncio.fixture(loop_scope="session")
async def send(sim: EvedexSim) -> AsyncIterator[SimSend]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim)) as client:
        yield SimSend(sim, client)


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = make_client(server.url)
    await client.flushdb()
    yield client
    await client.aclose(close_connection_pool=True)


def replica(
    client: aioredis.Redis, clock: FakeClock, secrets: MemoryStore, lease_s: float = 10
) -> EvedexSigner:
    from proxy.sessions_redis import RedisSessions

    signer = EvedexSigner({"auth_upstream": AUTH})
    signer.sessions = RedisSessions(client, secrets, clock, key_prefix="t", lease_s=lease_s, poll_s=0.01)
    return signer


def ctx(clock: FakeClock) -> SignContext:
    return SignContext("evedex", "main", int(clock.now() * 1000))


async def test_replicas_share_one_login(
    redis_client: aioredis.Redis, clock: FakeClock, sim: EvedexSim, send: SimSend
) -> None:
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    a, b = replica(redis_client, clock, secrets), replica(redis_client, clock, secrets)
    replies = await asyncio.gather(
        *((a if i % 2 else b).flow(ME, CREDS, ctx(clock), send) for i in range(20))
    )
    assert [reply.status for reply in replies] == [200] * 20
    assert (sim.logins, sim.refreshes) == (1, 0)


async def test_a_slow_refresh_keeps_its_lease_and_no_second_refresh_starts(
    redis_client: aioredis.Redis, clock: FakeClock, sim: EvedexSim, send: SimSend
) -> None:
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    a, b = (
        replica(redis_client, clock, secrets, lease_s=0.5),
        replica(redis_client, clock, secrets, lease_s=0.5),
    )
    assert (await a.flow(ME, CREDS, ctx(clock), send)).status == 200
    clock.advance(ACCESS_TTL_S)  # both replicas now hold a token that is due
    send.slow["/auth/refresh"] = 2.5  # five leases: only renewing the lease keeps the lock

    async def later() -> UpstreamReply:
        await asyncio.sleep(0.1)  # a is inside its refresh, holding the lock
        return await b.flow(ME, CREDS, ctx(clock), send)

    replies = await asyncio.gather(a.flow(ME, CREDS, ctx(clock), send), later())
    assert [reply.status for reply in replies] == [200, 200]
    assert (sim.logins, sim.refreshes) == (1, 1)  # b used a's refreshed tokens
    assert send.paths.count("/auth/refresh") == 1


async def test_tokens_at_rest_are_encrypted_and_bound_to_the_key(
    redis_client: aioredis.Redis,
    clock: FakeClock,
    sim: EvedexSim,
    send: SimSend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    a = replica(redis_client, clock, secrets)
    assert (await a.flow(ME, CREDS, ctx(clock), send)).status == 200
    blob = await redis_client.get("{t}:evedex:session:evedex/main")
    assert blob is not None
    tokens = a._sessions[("evedex", "main")].tokens
    assert tokens is not None
    for secret in (tokens.access, tokens.refresh, ADDRESS):
        assert secret.encode() not in blob
    rotated = MemoryStore(
        {("_proxy", "session"): {"session_encryption_key": base64.b64encode(b"k" * 32).decode()}}
    )
    b = replica(redis_client, clock, rotated)
    with caplog.at_level(logging.WARNING, logger="signing_proxy.sessions"):
        assert (await b.flow(ME, CREDS, ctx(clock), send)).status == 200
    assert sim.logins == 2  # b could not read a's session: it signed in itself
    assert any("does not decrypt" in record.getMessage() for record in caplog.records)
    assert all(tokens.access not in record.getMessage() for record in caplog.records)


async def test_without_the_vault_key_each_replica_keeps_its_own_session(
    redis_client: aioredis.Redis,
    clock: FakeClock,
    sim: EvedexSim,
    send: SimSend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = replica(redis_client, clock, MemoryStore()), replica(redis_client, clock, MemoryStore())
    with caplog.at_level(logging.WARNING, logger="signing_proxy.sessions"):
        assert (await a.flow(ME, CREDS, ctx(clock), send)).status == 200
        assert (await b.flow(ME, CREDS, ctx(clock), send)).status == 200
    assert sim.logins == 2
    assert await redis_client.keys("{t}:evedex:*") == []
    assert any("no session_encryption_key in Vault" in record.getMessage() for record in caplog.records)
