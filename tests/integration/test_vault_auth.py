"""Vault auth methods against a real OpenBao: AppRole, JWT (a projected service-account
token signed by a local key pair, no cluster needed), token renewal and re-login."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import hvac
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from proxy.clock import SystemClock
from proxy.credentials.vault import VaultStore
from proxy.credentials.vault_auth import AppRoleLogin, ServiceAccountLogin, TokenLogin
from proxy.dev.devvault import DevVault
from proxy.errors import CredentialsUnavailable

READ_POLICY = 'path "secret/data/signing-proxy/*" { capabilities = ["read"] }'
SA_SUBJECT = "system:serviceaccount:trading:signing-proxy"
SECRET = {"api_key": "k-123", "secret_key": "s-canary-456"}


@pytest.fixture(scope="module")
def vault():
    with DevVault() as dev:
        root = dev.client()
        root.sys.create_or_update_policy("signing-proxy", READ_POLICY)
        dev.put_secret("signing-proxy/coinex/main", SECRET)
        yield dev


def _store(vault: DevVault, login, cache_ttl_s: float = 300) -> VaultStore:
    client = hvac.Client(url=vault.url, timeout=5)
    return VaultStore(client, SystemClock(), cache_ttl_s=cache_ttl_s, stale_grace_s=0, login=login)


def _approle(vault: DevVault, tmp_path: Path, ttl: str) -> AppRoleLogin:
    root = vault.client()
    if "approle/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("approle")
    role = f"proxy-{ttl}"
    root.auth.approle.create_or_update_approle(
        role, token_policies=["signing-proxy"], token_ttl=ttl, token_max_ttl=ttl
    )
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    path = tmp_path / "secret-id"
    path.write_text(secret_id)
    return AppRoleLogin(role_id, str(path))


async def test_approle_login_reads_secret(vault: DevVault, tmp_path: Path) -> None:
    store = _store(vault, _approle(vault, tmp_path, "60s"))
    try:
        creds = await store.get("coinex", "main")
        assert creds["secret_key"] == SECRET["secret_key"]
        assert await store.ping()
    finally:
        await store.close()


async def test_approle_token_expiry_logs_in_again(vault: DevVault, tmp_path: Path) -> None:
    store = _store(vault, _approle(vault, tmp_path, "2s"), cache_ttl_s=0.01)
    try:
        await store.get("coinex", "main")
        first = store._client.token
        await asyncio.sleep(2.5)  # the token's max TTL passes: it cannot be renewed any more
        creds = await store.get("coinex", "main")
        assert creds["api_key"] == SECRET["api_key"]
        assert store._client.token != first
    finally:
        await store.close()


async def test_revoked_token_forbidden_then_relogin(vault: DevVault, tmp_path: Path) -> None:
    store = _store(vault, _approle(vault, tmp_path, "60s"), cache_ttl_s=0.01)
    try:
        await store.get("coinex", "main")
        vault.client().auth.token.revoke(store._client.token)
        await asyncio.sleep(0.02)
        assert (await store.get("coinex", "main"))["api_key"] == SECRET["api_key"]
    finally:
        await store.close()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _service_account_jwt(key: rsa.RSAPrivateKey, audience: str = "vault") -> str:
    """A token shaped like a Kubernetes projected service-account token."""
    now = int(time.time())
    claims = {
        "aud": [audience],
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": SA_SUBJECT,
        "kubernetes.io": {
            "namespace": "trading",
            "pod": {"name": "signing-proxy-0", "uid": "8f4c6f1e-0000-4000-8000-000000000000"},
            "serviceaccount": {"name": "signing-proxy", "uid": "2d5b4f8a-0000-4000-8000-000000000000"},
        },
    }
    head = _b64(json.dumps({"alg": "RS256", "kid": "test", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


@pytest.fixture(scope="module")
def cluster_key(vault: DevVault) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = vault.client()
    root.sys.enable_auth_method("jwt")
    root.write("auth/jwt/config", jwt_validation_pubkeys=[pem.decode()])
    root.write(
        "auth/jwt/role/signing-proxy",
        role_type="jwt",
        bound_audiences=["vault"],
        bound_subject=SA_SUBJECT,
        user_claim="sub",
        token_policies=["signing-proxy"],
        token_ttl="60s",
    )
    return key


async def test_service_account_token_via_jwt_auth(vault: DevVault, cluster_key, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(_service_account_jwt(cluster_key))
    store = _store(vault, ServiceAccountLogin("signing-proxy", str(token_file), mount="jwt", method="jwt"))
    try:
        assert (await store.get("coinex", "main"))["api_key"] == SECRET["api_key"]
    finally:
        await store.close()


async def test_service_account_token_from_another_cluster_is_refused(
    vault: DevVault, cluster_key, tmp_path
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token_file = tmp_path / "token"
    token_file.write_text(_service_account_jwt(stranger))
    store = _store(vault, ServiceAccountLogin("signing-proxy", str(token_file), mount="jwt", method="jwt"))
    try:
        with pytest.raises(CredentialsUnavailable) as info:
            await store.get("coinex", "main")
        assert SECRET["secret_key"] not in str(info.value)
        assert not await store.ping()
    finally:
        await store.close()


async def test_renewable_token_is_renewed_in_background(vault: DevVault) -> None:
    token = vault.client().auth.token.create(policies=["signing-proxy"], ttl="3s", renewable=True)["auth"][
        "client_token"
    ]
    store = _store(vault, TokenLogin(token), cache_ttl_s=0.01)
    try:
        await store.start()
        await asyncio.sleep(4.5)  # past the original TTL: only a renewal keeps it alive
        assert (await store.get("coinex", "main"))["api_key"] == SECRET["api_key"]
        assert store._client.token == token  # renewed, not replaced (a token cannot log in again)
    finally:
        await store.close()
