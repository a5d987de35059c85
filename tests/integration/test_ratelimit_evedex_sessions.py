"""EVEDEX sessions shared by replicas through a real Redis (``proxy.credentials.sessions_redis``).

Two ``EvedexSigner`` instances stand for two replicas; the simulated EVEDEX (in-process,
verifying SIWE and rotating single-use refresh tokens) counts logins and refreshes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from proxy.clock import FakeClock
from proxy.credentials.memory import MemoryStore
from proxy.errors import CredentialsUnavailable
from proxy.messages import Credentials, OutgoingRequest, UpstreamReply
from proxy.metrics import Metrics
from proxy.ratelimit.redis import make_client
from proxy.signers.base import SignContext
from proxy.signers.evedex.signer import EvedexSigner
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
async def redis_client(module_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = make_client(module_redis.url)
    await client.flushdb()
    yield client
    await client.aclose(close_connection_pool=True)


def replica(
    client: aioredis.Redis, clock: FakeClock, secrets: MemoryStore, lease_s: float = 10
) -> EvedexSigner:
    from proxy.credentials.sessions_redis import RedisSessions

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


# --- liveness and replay (issue 19, item 5) ----------------------------------------------

LOCK_KEY = "{t}:evedex:lock:evedex/main"
SESSION_KEY_NAME = "{t}:evedex:session:evedex/main"


def waits(metrics: Metrics, lock: str, outcome: str) -> float:
    labels = {"venue": "evedex", "lock": lock, "outcome": outcome}
    return metrics.registry.get_sample_value("signing_proxy_session_lock_wait_seconds_count", labels) or 0.0


def live_replica(
    client: aioredis.Redis,
    clock: FakeClock,
    secrets: MemoryStore,
    metrics: Metrics,
    *,
    lease_s: float = 0.3,
    wait_s: float = 30,
    session_wait_s: float = 60,
) -> EvedexSigner:
    from proxy.credentials.sessions_redis import RedisSessions

    signer = EvedexSigner({"auth_upstream": AUTH, "session_wait_s": session_wait_s})
    signer.lock_waits = metrics.session_lock_wait
    signer.sessions = RedisSessions(
        client,
        secrets,
        clock,
        key_prefix="t",
        lease_s=lease_s,
        wait_s=wait_s,
        poll_s=0.01,
        observe=metrics.session_lock_wait,
    )
    return signer


@pytest.mark.parametrize("left_ttl_ms", [60_000, None], ids=["long-lease", "no-ttl"])
async def test_a_lock_left_by_a_dead_replica_is_taken_over_within_the_lease(
    redis_client: aioredis.Redis,
    clock: FakeClock,
    sim: EvedexSim,
    send: SimSend,
    caplog: pytest.LogCaptureFixture,
    left_ttl_ms: int | None,
) -> None:
    """A replica died holding the lock (with a minute-long lease, or none at all): the
    others cut it to their own lease, take it over and still log in once, together."""
    await redis_client.set(LOCK_KEY, "dead-replica", px=left_ttl_ms)
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    metrics = Metrics(CollectorRegistry())
    b, c = (live_replica(redis_client, clock, secrets, metrics) for _ in range(2))
    with caplog.at_level(logging.WARNING, logger="signing_proxy.sessions"):
        replies = await asyncio.gather(*(s.flow(ME, CREDS, ctx(clock), send) for s in (b, c, b, c)))
    assert [reply.status for reply in replies] == [200] * 4
    assert sim.logins == 1  # the lock was taken over, not ignored: one login for both
    assert not any("still held" in record.getMessage() for record in caplog.records)
    assert await redis_client.exists(LOCK_KEY) == 0  # released by the replica that took it
    assert waits(metrics, "shared", "acquired") >= 1 and waits(metrics, "shared", "gave_up") == 0


async def test_a_live_holder_keeps_its_lease_and_waiters_give_up_after_the_bounded_wait(
    redis_client: aioredis.Redis, clock: FakeClock, sim: EvedexSim, send: SimSend
) -> None:
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    metrics = Metrics(CollectorRegistry())
    a = live_replica(redis_client, clock, secrets, metrics, lease_s=0.3)
    b = live_replica(redis_client, clock, secrets, metrics, lease_s=0.3, wait_s=0.5)
    send.slow["/auth/user/sign-up"] = 2.0  # a's login outlives b's patience (and many leases)

    async def later() -> UpstreamReply:
        await asyncio.sleep(0.2)  # a holds the lock and is inside its login
        return await b.flow(ME, CREDS, ctx(clock), send)

    first, second = await asyncio.gather(a.flow(ME, CREDS, ctx(clock), send), later(), return_exceptions=True)
    assert isinstance(first, UpstreamReply) and first.status == 200
    assert isinstance(second, CredentialsUnavailable)
    assert "another replica" in second.message and "evedex/main" in second.message
    assert sim.logins == 1  # b did not start a second login behind a's back
    assert waits(metrics, "shared", "gave_up") == 1


async def test_requests_in_one_replica_queue_behind_a_renewal_for_a_bounded_time(
    redis_client: aioredis.Redis, clock: FakeClock, sim: EvedexSim, send: SimSend
) -> None:
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    metrics = Metrics(CollectorRegistry())
    a = live_replica(redis_client, clock, secrets, metrics, session_wait_s=0.3)
    send.slow["/auth/user/sign-up"] = 1.5
    flows = (a.flow(ME, CREDS, ctx(clock), send) for _ in range(4))
    results = await asyncio.gather(*flows, return_exceptions=True)
    assert isinstance(results[0], UpstreamReply) and results[0].status == 200
    assert all(isinstance(r, CredentialsUnavailable) and "in progress" in r.message for r in results[1:])
    assert sim.logins == 1
    assert waits(metrics, "local", "gave_up") == 3 and waits(metrics, "local", "acquired") == 1


async def test_an_older_session_blob_written_back_is_rejected(
    redis_client: aioredis.Redis,
    clock: FakeClock,
    sim: EvedexSim,
    send: SimSend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = MemoryStore({("_proxy", "session"): SESSION_KEY})
    a, b = replica(redis_client, clock, secrets), replica(redis_client, clock, secrets)
    assert (await a.flow(ME, CREDS, ctx(clock), send)).status == 200
    old_blob = await redis_client.get(SESSION_KEY_NAME)
    assert (await b.flow(ME, CREDS, ctx(clock), send)).status == 200  # b reads a's session
    clock.advance(ACCESS_TTL_S)
    assert (await a.flow(ME, CREDS, ctx(clock), send)).status == 200  # a refreshes: a newer blob
    assert (sim.logins, sim.refreshes) == (1, 1)
    current = a._sessions[("evedex", "main")].tokens
    assert (await b.sessions.load("evedex", "main")) == (ADDRESS, current)  # b has seen the newer one
    await redis_client.set(SESSION_KEY_NAME, old_blob)  # replayed by someone with Redis access
    with caplog.at_level(logging.WARNING, logger="signing_proxy.sessions"):
        for signer in (a, b):
            assert await signer.sessions.load("evedex", "main") is None
    assert any("older" in record.getMessage() for record in caplog.records)
    # A blob whose version header was raised to look newer does not decrypt.
    forged = old_blob[:12] + (2**40).to_bytes(8, "big") + old_blob[20:]
    await redis_client.set(SESSION_KEY_NAME, forged)
    assert await b.sessions.load("evedex", "main") is None
