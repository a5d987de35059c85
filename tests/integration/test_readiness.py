"""Readiness never turns a shared-dependency degradation into an outage (issue 15).

``signing-proxy serve`` as a process against a real OpenBao dev server: with the secret
cached, Vault going down leaves ``/readyz`` at 200 and says what is degraded (per
dependency, per account) in the body and in the metrics; an account whose secret is
incomplete degrades that account only. ``readiness: strict`` keeps the old contract: 503.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.dev.devvault import DevVault, free_port
from proxy.dev.serve_process import ServeProcess

POLICY = {
    "version": 1,
    "clients": {
        "reader": {
            "token_sha256": "ab" * 32,
            "allow": [{"venue": "coinex", "accounts": ["main"], "methods": ["GET"], "paths": ["/v2/**"]}],
        }
    },
}


def _config(tmp: Path, vault: DevVault, **extra: Any) -> Path:
    (tmp / "policies").mkdir(exist_ok=True)
    (tmp / "policies" / "p.yaml").write_text(yaml.safe_dump(POLICY))
    config = {
        "listen": {"host": "127.0.0.1", "port": 1},
        "admin": {"host": "127.0.0.1", "port": 1},
        "vault": {"url": vault.url, "auth": {"method": "token"}, "timeout_s": 2},
        "policies": "policies",
        "watch_interval_s": 0,
        "venues": {
            "coinex": {
                "scheme": "coinex",
                "upstream": f"http://127.0.0.1:{free_port()}",
                "accounts": ["main", "half"],
            }
        },
        **extra,
    }
    path = tmp / "proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def vault():
    dev = DevVault().start()
    dev.put_secret("signing-proxy/coinex/main", {"api_key": "k-main", "secret_key": "s-main-0123456789"})
    dev.put_secret("signing-proxy/coinex/half", {"api_key": "k-half"})  # no secret_key: incomplete
    yield dev
    dev.stop()


async def _ready(http: httpx.AsyncClient, proxy: ServeProcess, vault: str = "ok") -> httpx.Response:
    # Readiness waits for the first warm-up attempt, and the dependency checks run every
    # few seconds in the background: poll until the state under test has been seen.
    for _ in range(300):
        response = await http.get(f"{proxy.admin_url}/readyz")
        checks = response.json()["checks"]
        if checks["warm_up"] == "done" and checks.get("vault") == vault:
            return response
        await asyncio.sleep(0.1)
    raise AssertionError(f"never saw warm-up done and vault {vault!r}")


async def test_vault_down_with_cached_secrets_stays_ready_and_says_degraded(
    tmp_path: Path, vault: DevVault
) -> None:
    env = {"VAULT_TOKEN": vault.root_token}
    config = _config(tmp_path, vault)
    async with ServeProcess(config, env=env) as proxy, httpx.AsyncClient(timeout=10) as http:
        up = await _ready(http, proxy)
        body = up.json()
        assert up.status_code == 200 and body["ready"] is True
        assert body["checks"]["vault"] == "ok"
        assert body["checks"]["secrets"]["coinex/main"] == "ok"
        # One incomplete secret degrades its account, never the pod.
        assert "secret_key" in body["checks"]["secrets"]["coinex/half"]
        assert body["status"] == "degraded" and "coinex/half" in body["degraded"]
        vault.stop()
        down = await _ready(http, proxy, vault="unreachable")
        body = down.json()
        assert down.status_code == 200 and body["ready"] is True
        assert body["checks"]["vault"] == "unreachable"
        assert body["checks"]["secrets"]["coinex/main"] == "ok"  # served from the cache
        assert "vault" in body["degraded"]
        metrics = (await http.get(f"{proxy.admin_url}/metrics")).text
        assert 'signing_proxy_dependency_up{dependency="vault"} 0.0' in metrics
        assert 'signing_proxy_account_credentials_ok{account="main",venue="coinex"} 1.0' in metrics
        assert 'signing_proxy_account_credentials_ok{account="half",venue="coinex"} 0.0' in metrics
        assert "signing_proxy_ready 1.0" in metrics
        assert "s-main-0123456789" not in metrics + down.text


async def test_strict_readiness_is_not_ready_while_vault_is_down(tmp_path: Path, vault: DevVault) -> None:
    env = {"VAULT_TOKEN": vault.root_token}
    config = _config(tmp_path, vault, readiness="strict")
    async with ServeProcess(config, env=env) as proxy, httpx.AsyncClient(timeout=10) as http:
        first = await _ready(http, proxy)
        assert first.status_code == 503  # strict: the incomplete secret alone makes it unready
        assert first.json()["mode"] == "strict"
        vault.stop()
        down = await _ready(http, proxy, vault="unreachable")
        assert down.status_code == 503 and down.json()["checks"]["vault"] == "unreachable"
        metrics = (await http.get(f"{proxy.admin_url}/metrics")).text
        assert "signing_proxy_ready 0.0" in metrics
