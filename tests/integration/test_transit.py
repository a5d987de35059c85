"""Transit signing against a real OpenBao: the keys live in Transit only, the proxy signs
through it, the strict simulated venues accept the result, and Transit signatures equal
the KV-mode ones byte for byte (HMAC) or verify with the venue's salt length (RSA-PSS)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import pytest
import pytest_asyncio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from proxy.clock import SystemClock
from proxy.credentials.transit import VaultTransit
from proxy.credentials.vault import VaultStore
from proxy.credentials.vault_auth import AppRoleLogin, TokenKeeper, TokenLogin
from proxy.dev.devvault import DevVault
from proxy.dev.stack import LocalStack
from proxy.errors import CredentialsUnavailable
from proxy.keys.provisioning import Account, KeyVault, put_transit, rotate
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import SIGNERS
from proxy.signers.base import SignContext
from proxy.signers.invex import load_private_key
from proxy.signers.keyops import Hmac, RsaPss, drive
from proxy.signing_modes import default_transit_key
from proxy.sim.samples import ORDERS, READS

pytestmark = pytest.mark.asyncio(loop_scope="session")

POLICIES = Path(__file__).resolve().parents[2] / "docs" / "vault-policies"
TRANSIT = ("coinex", "icrypex", "haqqex", "invex")
HMAC_SCHEMES = ("coinex", "icrypex", "haqqex")
CTX = SignContext("v", "main", 1_700_000_000_123)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def transit_stack():
    async with LocalStack(
        transit=TRANSIT, extra_config={"rate_limits": {"venue_profiles": False}}
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def transit(transit_stack: LocalStack):
    keeper = TokenKeeper(
        transit_stack.vault.client(), TokenLogin(transit_stack.vault.root_token), SystemClock()
    )
    client = VaultTransit(transit_stack.vault.url, keeper)
    yield client
    await client.close()


def _requests(scheme: str) -> list[OutgoingRequest]:
    path, body = ORDERS[scheme]
    return [
        OutgoingRequest("GET", READS[scheme], (("accept", "application/json"),)),
        OutgoingRequest("POST", path, (("content-type", "application/json"),), json.dumps(body).encode()),
        OutgoingRequest("DELETE", path + "?id=7&x=%20y", ()),
    ]


@pytest.mark.parametrize("scheme", HMAC_SCHEMES)
async def test_transit_hmac_signatures_equal_kv_signatures_byte_for_byte(
    transit_stack: LocalStack, transit: VaultTransit, scheme: str
) -> None:
    signer = SIGNERS[scheme]()
    secret = Credentials(transit_stack.credentials[scheme])  # what KV mode signs with
    public = Credentials({"api_key": secret["api_key"]})  # all a Transit account has in KV
    keys = transit.operator(scheme, "main", default_transit_key(scheme, "main"), None)
    for request in _requests(scheme):
        kv_signed = signer.sign(request, secret, CTX)
        transit_signed = await drive(signer.sign_steps(request, public, CTX), keys)
        assert transit_signed == kv_signed
        assert transit_signed.headers == kv_signed.headers and transit_signed.body == kv_signed.body


async def test_a_short_hmac_secret_is_padded_and_still_signs_identically(
    transit_stack: LocalStack, transit: VaultTransit
) -> None:
    fields = {"api_key": "short-key-account", "secret_key": "only-20-bytes-secret"}  # Transit's minimum is 32
    account = Account("haqqex", "short", SIGNERS["haqqex"](), "signing-proxy-haqqex-short")
    vault = KeyVault(transit_stack.vault.client(), "secret", "signing-proxy", "transit")
    put_transit(vault, account, fields, "signing-proxy-haqqex-short")
    keys = transit.operator("haqqex", "short", "signing-proxy-haqqex-short", None)
    request = _requests("haqqex")[1]
    kv_signed = SIGNERS["haqqex"]().sign(request, Credentials(fields), CTX)
    assert await drive(SIGNERS["haqqex"]().sign_steps(request, Credentials(fields), CTX), keys) == kv_signed


async def test_invex_transit_signature_verifies_with_salt_length_222(
    transit_stack: LocalStack, transit: VaultTransit
) -> None:
    message = b'{"currency": "USDT", "expire_at": "2024-06-18 12:00:00"}'
    signature = await transit.perform(default_transit_key("invex", "main"), None, RsaPss(message))
    public = load_private_key(transit_stack.credentials["invex"]["private_key"]).public_key()
    assert public.key_size == 2048 and len(signature) == 256
    # PSS.MAX_LENGTH for RSA-2048 and SHA-256: 256 - 32 - 2. MAX_LENGTH itself verifies any
    # salt, so the length is pinned explicitly, and a 32-byte salt must not verify.
    public.verify(signature, message, _pss(222), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(signature, message, _pss(32), hashes.SHA256())


def _pss(salt: int) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)


@pytest.mark.parametrize("scheme", TRANSIT)
async def test_requests_signed_in_transit_mode_are_accepted_by_the_venues(
    transit_stack: LocalStack, scheme: str
) -> None:
    sim = transit_stack.sims[scheme]
    before = len(sim.recorder.requests)
    path, body = ORDERS[scheme]
    async with httpx.AsyncClient(timeout=20) as http:
        read = await http.get(transit_stack.url(scheme, READS[scheme]), headers=transit_stack.headers())
        order = await http.post(transit_stack.url(scheme, path), json=body, headers=transit_stack.headers())
    for response in (read, order):
        assert response.status_code == 200, response.text
        assert "x-signing-proxy-error" not in response.headers
        payload = response.json()
        assert not (isinstance(payload, dict) and payload.get("code") not in (None, 0)), payload
    assert len(sim.recorder.requests) == before + 2


@pytest.mark.parametrize("scheme", TRANSIT)
async def test_kv_holds_no_key_material_and_the_key_cannot_be_exported(
    transit_stack: LocalStack, scheme: str
) -> None:
    client = transit_stack.vault.client()
    path = f"signing-proxy/{scheme}/main"
    fields = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"][
        "data"
    ]
    assert set(fields) == {"api_key", "transit_key", "transit_key_version"}
    key = default_transit_key(scheme, "main")
    info = client.adapter.get(f"/v1/transit/keys/{key}")["data"]
    assert (info["exportable"], info["allow_plaintext_backup"], info["imported_key"]) == (False, False, True)
    kinds = ("hmac-key", "encryption-key", "signing-key")
    for kind in kinds:
        with pytest.raises(hvac.exceptions.InvalidRequest):
            client.adapter.get(f"/v1/transit/export/{kind}/{key}")
    with pytest.raises(hvac.exceptions.VaultError):
        client.adapter.get(f"/v1/transit/backup/{key}")
    with pytest.raises(hvac.exceptions.VaultError):  # and Vault cannot replace the venue's key
        client.adapter.post(f"/v1/transit/keys/{key}/rotate")


async def test_streams_log_in_with_transit_signatures(transit_stack: LocalStack) -> None:
    from proxy.dev.demo_streams import stream_rows

    rows = await stream_rows(transit_stack)
    assert rows and all(ok for _, _, ok, _, _ in rows), rows


async def test_no_secret_in_logs_reprs_or_error_bodies(transit_stack: LocalStack, captured_logs) -> None:
    bodies = []
    async with httpx.AsyncClient(timeout=20) as http:
        for scheme in TRANSIT:
            path, body = ORDERS[scheme]
            response = await http.post(
                transit_stack.url(scheme, path), json=body, headers=transit_stack.headers()
            )
            bodies.append(response.text)
        missing = await http.get(
            transit_stack.url("coinex", "/v2/x", account="nobody"), headers=transit_stack.headers()
        )
        bodies.append(missing.text)
    canaries = [
        v for fields in transit_stack.credentials.values() for k, v in fields.items() if k != "api_key"
    ]
    canaries.append(transit_stack.vault.root_token)
    assert transit_stack.app is not None
    reprs = repr(transit_stack.app.pipeline.transit) + repr(transit_stack.app.pipeline.venues)
    logs = captured_logs.getvalue()
    assert '"msg": "request"' in logs
    for canary in canaries:
        assert canary not in logs and canary not in reprs
        assert all(canary not in body for body in bodies)


def _approle(vault: DevVault, tmp_path: Path, policy: str) -> AppRoleLogin:
    root = vault.client()
    if "approle/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(policy, (POLICIES / f"{policy}.hcl").read_text())
    root.auth.approle.create_or_update_approle(policy, token_policies=[policy], token_ttl="60s")
    role_id = root.auth.approle.read_role_id(policy)["data"]["role_id"]
    path = tmp_path / "secret-id"
    path.write_text(root.auth.approle.generate_secret_id(policy)["data"]["secret_id"])
    return AppRoleLogin(role_id, str(path))


async def test_transit_shares_the_store_login_and_logs_in_again_after_a_403(
    transit_stack: LocalStack, tmp_path: Path
) -> None:
    """The proxy's policy (docs/vault-policies/signing-proxy.hcl) is enough to sign; a revoked
    token makes one single-flight re-login, after which concurrent signatures all succeed."""
    vault = transit_stack.vault
    store = VaultStore(
        hvac.Client(url=vault.url), SystemClock(), login=_approle(vault, tmp_path, "signing-proxy")
    )
    transit = VaultTransit(vault.url, store.keeper)
    key = default_transit_key("coinex", "main")
    try:
        await store.start()
        assert (await store.get("coinex", "main"))["api_key"] == transit_stack.credentials["coinex"][
            "api_key"
        ]
        first = await transit.perform(key, None, Hmac(b"probe"))
        vault.client().auth.token.revoke(store.keeper.client.token)
        again = await asyncio.gather(*(transit.perform(key, None, Hmac(b"probe")) for _ in range(8)))
        assert again == [first] * 8
        with pytest.raises(CredentialsUnavailable) as refused:  # not covered by the proxy's policy
            await transit.operator("coinex", "main", "other-key", None)(Hmac(b"probe"))
        assert "Vault Transit key other-key: hmac answered 403" in refused.value.message
    finally:
        await transit.close()
        await store.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_retired_pinned_version_drops_the_cached_secret() -> None:
    """Issue 19 item 8: a replica caching the old pin after a forced retire fails one request
    (503, nothing sent to the venue), then re-reads KV and signs with the new version,
    instead of failing for the rest of vault.cache_ttl_s (300 s here)."""
    async with LocalStack(
        schemes=("coinex",), transit=("coinex",), extra_config={"rate_limits": {"venue_profiles": False}}
    ) as stack:
        url = stack.url("coinex", READS["coinex"])
        sim = stack.sims["coinex"]
        async with httpx.AsyncClient(timeout=20) as http:
            assert (await http.get(url, headers=stack.headers())).status_code == 200  # caches pin v1
            vault = KeyVault(stack.vault.client(), "secret", "signing-proxy", "transit")
            account = Account("coinex", "main", SIGNERS["coinex"](), default_transit_key("coinex", "main"))
            rotate(vault, account, stack.credentials["coinex"])  # same secret: the venue still verifies
            vault.transit.retire_below(account.transit_key or "", 2)  # what `retire --force` does
            sent = len(sim.recorder.requests)
            first = await http.get(url, headers=stack.headers())
            assert first.status_code == 503
            assert first.headers["x-signing-proxy-error"] == "credentials_unavailable"
            assert len(sim.recorder.requests) == sent  # nothing reached the venue
            second = await http.get(url, headers=stack.headers())
            assert second.status_code == 200, second.text
            assert len(sim.recorder.requests) == sent + 1
