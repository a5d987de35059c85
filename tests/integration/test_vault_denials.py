"""A Vault 403 is a permission problem unless the token is actually invalid (issue 19, item 1).

Real OpenBao, AppRole login, the shipped ``docs/vault-policies/signing-proxy.hcl`` (Transit
keys ``signing-proxy-*`` only) plus one denied KV account. Logins are counted on the server:
every login creates a token, and ``auth/token/accessors`` lists the live ones.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import pytest
from prometheus_client import CollectorRegistry

from proxy.clock import SystemClock
from proxy.credentials.transit import VaultTransit
from proxy.credentials.vault import VaultStore
from proxy.credentials.vault_auth import AppRoleLogin
from proxy.dev.devvault import DevVault
from proxy.errors import CredentialsUnavailable
from proxy.metrics import Metrics
from proxy.signers.keyops import Hmac

POLICIES = Path(__file__).resolve().parents[2] / "docs" / "vault-policies"
# The shipped policy, and one account an operator took away from the proxy.
DENY_DESK4 = '\npath "secret/data/signing-proxy/coinex/desk4" {\n  capabilities = ["deny"]\n}\n'
ALLOWED_KEY, DENIED_KEY = "signing-proxy-coinex-main", "coinex-desk3"
SECRET = {"api_key": "k-denials", "secret_key": "s-denials-canary-789"}


@pytest.fixture(scope="module")
def vault():
    with DevVault() as dev:
        root = dev.client()
        dev.enable_transit()
        for key in (ALLOWED_KEY, DENIED_KEY):
            root.secrets.transit.create_key(key)
        policy = (POLICIES / "signing-proxy.hcl").read_text() + DENY_DESK4
        root.sys.create_or_update_policy("signing-proxy", policy)
        root.sys.enable_auth_method("approle")
        root.auth.approle.create_or_update_approle(
            "proxy", token_policies=["signing-proxy"], token_ttl="600s"
        )
        for account in ("main", "desk4"):
            dev.put_secret(f"signing-proxy/coinex/{account}", SECRET)
        yield dev


def _login(vault: DevVault, tmp_path: Path) -> AppRoleLogin:
    root = vault.client()
    role_id = root.auth.approle.read_role_id("proxy")["data"]["role_id"]
    path = tmp_path / "secret-id"
    path.write_text(root.auth.approle.generate_secret_id("proxy")["data"]["secret_id"])
    return AppRoleLogin(role_id, str(path))


def _accessors(vault: DevVault) -> set[str]:
    """Every live token on the server (root included)."""
    return set(vault.client().list("auth/token/accessors")["data"]["keys"])


def _parts(
    vault: DevVault, tmp_path: Path, relogin_interval_s: float = 5
) -> tuple[VaultStore, VaultTransit, Metrics]:
    metrics = Metrics(CollectorRegistry())
    store = VaultStore(
        hvac.Client(url=vault.url, timeout=5),
        SystemClock(),
        cache_ttl_s=0.01,
        stale_grace_s=0,
        login=_login(vault, tmp_path),
        metrics=metrics,
        relogin_interval_s=relogin_interval_s,
    )
    return store, VaultTransit(vault.url, store.keeper, metrics=metrics), metrics


def _denied(metrics: Metrics, kind: str, account: str) -> float:
    labels = {"venue": "coinex", "account": account, "kind": kind}
    return metrics.registry.get_sample_value("signing_proxy_vault_denied_total", labels) or 0.0


async def test_21_requests_to_a_denied_transit_key_make_no_login_storm(
    vault: DevVault, tmp_path: Path
) -> None:
    store, transit, metrics = _parts(vault, tmp_path)
    denied = transit.operator("coinex", "desk3", DENIED_KEY, None)
    try:
        await store.start()  # the one login this test expects
        before = _accessors(vault)
        token = store.keeper.client.token
        outcomes = await asyncio.gather(*(denied(Hmac(b"probe")) for _ in range(11)), return_exceptions=True)
        for _ in range(10):
            outcomes.append(await asyncio.gather(denied(Hmac(b"probe")), return_exceptions=True))
        flat = [o[0] if isinstance(o, list) else o for o in outcomes]
        assert len(flat) == 21 and all(isinstance(o, CredentialsUnavailable) for o in flat), flat
        message = flat[-1].message
        assert "transit/hmac/coinex-desk3" in message and "signing-proxy" in message
        assert token not in message and SECRET["secret_key"] not in message
        assert _accessors(vault) == before  # no login, no new token
        assert store.keeper.client.token == token
        assert _denied(metrics, "transit", "desk3") == 21
        # The allowed key still signs with the same token: the refusal was per path.
        assert len(await transit.perform(ALLOWED_KEY, None, Hmac(b"probe"))) == 32
    finally:
        await transit.close()
        await store.close()


async def test_21_reads_of_a_denied_kv_path_make_no_login_storm(vault: DevVault, tmp_path: Path) -> None:
    store, transit, metrics = _parts(vault, tmp_path)
    try:
        await store.start()
        before = _accessors(vault)
        for _ in range(21):
            with pytest.raises(CredentialsUnavailable) as refused:
                await store.get("coinex", "desk4")
            assert "secret/data/signing-proxy/coinex/desk4" in refused.value.message
            assert SECRET["secret_key"] not in refused.value.message
        assert _accessors(vault) == before
        assert _denied(metrics, "kv", "desk4") == 21
        assert (await store.get("coinex", "main"))["api_key"] == SECRET["api_key"]
    finally:
        await transit.close()
        await store.close()


async def test_a_revoked_token_makes_exactly_one_relogin(vault: DevVault, tmp_path: Path) -> None:
    store, transit, _ = _parts(vault, tmp_path)
    try:
        await store.start()
        first = await transit.perform(ALLOWED_KEY, None, Hmac(b"probe"))
        old = store.keeper.client.token
        vault.client().auth.token.revoke(old)
        before = _accessors(vault)
        signed = await asyncio.gather(*(transit.perform(ALLOWED_KEY, None, Hmac(b"probe")) for _ in range(8)))
        reads = await asyncio.gather(*(store.get("coinex", "main") for _ in range(4)))
        assert signed == [first] * 8
        assert all(creds["api_key"] == SECRET["api_key"] for creds in reads)
        assert len(_accessors(vault) - before) == 1  # exactly one new token
        assert store.keeper.client.token != old
    finally:
        await transit.close()
        await store.close()


async def test_a_relogin_revokes_the_token_it_replaces(vault: DevVault, tmp_path: Path) -> None:
    store, transit, _ = _parts(vault, tmp_path)
    try:
        await store.start()
        old_accessor = store.keeper.client.auth.token.lookup_self()["data"]["accessor"]
        await asyncio.to_thread(store.keeper.relogin)  # what the renewer does when renewal is impossible
        assert old_accessor not in _accessors(vault)
        with pytest.raises(hvac.exceptions.VaultError):
            vault.client().auth.token.lookup_accessor(old_accessor)
        assert (await store.get("coinex", "main"))["api_key"] == SECRET["api_key"]
    finally:
        await transit.close()
        await store.close()


async def test_relogins_after_403_are_limited_to_one_per_interval(vault: DevVault, tmp_path: Path) -> None:
    store, transit, _ = _parts(vault, tmp_path, relogin_interval_s=600)
    try:
        await store.start()
        vault.client().auth.token.revoke(store.keeper.client.token)
        assert len(await transit.perform(ALLOWED_KEY, None, Hmac(b"probe"))) == 32  # re-login 1
        vault.client().auth.token.revoke(store.keeper.client.token)  # invalid again at once
        before = _accessors(vault)
        with pytest.raises(CredentialsUnavailable) as refused:
            await transit.operator("coinex", "main", ALLOWED_KEY, None)(Hmac(b"probe"))
        assert "403" in refused.value.message
        assert "permission denied: update" not in refused.value.message  # not a policy problem
        with pytest.raises(CredentialsUnavailable) as kv_refused:
            await store.get("coinex", "main")
        assert "token invalid" in kv_refused.value.message
        assert _accessors(vault) == before  # no second login inside the interval
    finally:
        await transit.close()
        await store.close()


def _restricted_approle(vault: DevVault, workdir: Path) -> dict[str, object]:
    """The proxy logs in with AppRole under the shipped policy (not the root token)."""
    root = vault.client()
    root.sys.create_or_update_policy("signing-proxy", (POLICIES / "signing-proxy.hcl").read_text())
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("proxy", token_policies=["signing-proxy"], token_ttl="600s")
    role_id = root.auth.approle.read_role_id("proxy")["data"]["role_id"]
    secret_id = workdir / "secret-id"
    secret_id.write_text(root.auth.approle.generate_secret_id("proxy")["data"]["secret_id"])
    # desk3's public KV fields, as `signing-proxy keys put --transit` would leave them
    vault.put_secret("signing-proxy/coinex/desk3", {"api_key": "desk3-api-key", "transit_key": DENIED_KEY})
    return {"method": "approle", "role_id": role_id, "secret_id_file": str(secret_id)}


async def test_the_issue_scenario_end_to_end_21_requests_one_login(tmp_path: Path) -> None:
    """issue 19: `transit_key: coinex-desk3` under signing-proxy.hcl, 21 requests through the
    proxy: each is a 503 naming the path, none logs in, and the metric counts them."""
    from proxy.dev.stack import LocalStack
    from proxy.sim.samples import READS

    desk3 = {"name": "desk3", "signing": "transit", "transit_key": DENIED_KEY}
    async with LocalStack(
        schemes=("coinex",),
        transit=("coinex",),
        extra_accounts={"coinex": [desk3]},
        vault_auth=_restricted_approle,
        extra_config={"rate_limits": {"venue_profiles": False}},
    ) as stack:
        async with httpx.AsyncClient(timeout=20) as http:
            ok = await http.get(stack.url("coinex", READS["coinex"]), headers=stack.headers())
            assert ok.status_code == 200, ok.text  # the allowed key signs
            before = _accessors(stack.vault)
            answers = [
                await http.get(stack.url("coinex", READS["coinex"], "desk3"), headers=stack.headers())
                for _ in range(21)
            ]
        assert _accessors(stack.vault) == before  # 0 logins (was 22 logins, 22 live tokens)
        for answer in answers:
            assert answer.status_code == 503
            assert answer.headers["x-signing-proxy-error"] == "credentials_unavailable"
            message = answer.json()["error"]["message"]
            assert "transit/hmac/coinex-desk3" in message and "signing-proxy" in message
        assert stack.app is not None
        metrics = stack.app.metrics.render().decode()
        assert (
            'signing_proxy_vault_denied_total{account="desk3",kind="transit",venue="coinex"} 21.0' in metrics
        )
