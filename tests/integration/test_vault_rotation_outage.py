"""Rotation is picked up within the cache TTL; a Vault outage is bridged by cached
secrets for the grace period, then refused; readiness follows Vault down and back up."""

from __future__ import annotations

import hvac
import pytest

from proxy.clock import FakeClock
from proxy.credentials.vault import VaultStore
from proxy.credentials.vault_auth import TokenLogin
from proxy.dev.devvault import DevVault
from proxy.errors import CredentialsUnavailable

PATH = "signing-proxy/coinex/main"


@pytest.fixture
def vault():
    dev = DevVault().start()
    yield dev
    dev.stop()


def _store(vault: DevVault, clock: FakeClock) -> VaultStore:
    client = hvac.Client(url=vault.url, timeout=2)
    return VaultStore(client, clock, cache_ttl_s=300, stale_grace_s=900, login=TokenLogin(vault.root_token))


async def test_rotation_picked_up_after_ttl(vault: DevVault) -> None:
    clock = FakeClock()
    vault.put_secret(PATH, {"api_key": "k", "secret_key": "v1"})
    store = _store(vault, clock)
    try:
        first = await store.get("coinex", "main")
        vault.put_secret(PATH, {"api_key": "k", "secret_key": "v2"})
        assert (await store.get("coinex", "main"))["secret_key"] == "v1"  # within the TTL: cached
        clock.advance(301)
        rotated = await store.get("coinex", "main")
        assert rotated["secret_key"] == "v2" and rotated.version != first.version
    finally:
        await store.close()


async def test_outage_grace_then_refusal_and_readiness(vault: DevVault) -> None:
    clock = FakeClock()
    vault.put_secret(PATH, {"api_key": "k", "secret_key": "s"})
    store = _store(vault, clock)
    try:
        await store.get("coinex", "main")
        assert await store.ping()
        vault.stop()
        assert not await store.ping()
        clock.advance(301)  # TTL over, Vault down: the cached secret keeps serving (grace)
        assert (await store.get("coinex", "main"))["secret_key"] == "s"
        clock.advance(900)  # grace over
        with pytest.raises(CredentialsUnavailable, match="Vault unreachable"):
            await store.get("coinex", "main")
        restarted = DevVault(port=vault.port, root_token=vault.root_token).start()
        try:
            restarted.put_secret(PATH, {"api_key": "k", "secret_key": "s2"})
            assert await store.ping()
            assert (await store.get("coinex", "main"))["secret_key"] == "s2"
        finally:
            restarted.stop()
    finally:
        await store.close()
