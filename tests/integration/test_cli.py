"""The real entry points: ``signing-proxy check --vault`` and ``signing-proxy serve`` as a process."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys

import httpx
import pytest

from proxy.cli import main
from proxy.dev.devvault import free_port
from proxy.dev.serve_process import ServeProcess
from proxy.dev.stack import LocalStack


def test_check_vault_reports_each_account(stack: LocalStack, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", stack.vault.root_token)
    code = main(["check", "--config", str(stack.dir / "proxy.yaml"), "--vault"])
    out = capsys.readouterr().out
    assert code == 1  # the 'absent' accounts have no secret
    assert "vault coinex/main: ok" in out and "vault invex/main: ok" in out
    assert "vault icrypex/absent: FAILED: credentials for icrypex/absent unavailable" in out
    for fields in stack.credentials.values():
        for value in fields.values():
            assert value not in out


@pytest.mark.asyncio(loop_scope="session")  # the simulated venues answer on the session loop
async def test_serve_process_signs_and_stops_on_sigterm(stack: LocalStack) -> None:
    proxy = await ServeProcess(stack.dir / "proxy.yaml", stderr=asyncio.subprocess.PIPE).start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            ready = await http.get(f"{proxy.admin_url}/readyz")
            while ready.json()["checks"]["warm_up"] != "done":  # the first pass runs at start
                await asyncio.sleep(0.1)
                ready = await http.get(f"{proxy.admin_url}/readyz")
            checks = ready.json()["checks"]
            # Ready (accounts with no secret degrade themselves, not the pod), and it says why.
            assert ready.status_code == 200 and checks["policies"] == "ok" and checks["vault"] == "ok"
            assert ready.json()["status"] == "degraded" and "icrypex/absent" in ready.json()["degraded"]
            assert checks["secrets"]["coinex/main"] == "ok"
            assert "no secret" in checks["secrets"]["icrypex/absent"]
            assert checks["secrets"]["coinex/incomplete"] != "ok"
            response = await http.get(
                f"{proxy.url}/coinex/main/v2/assets/spot/balance", headers=stack.headers()
            )
            assert response.status_code == 200 and response.json()["code"] == 0
            denied = await http.get(f"{proxy.url}/coinex/main/v2/x/withdraw", headers=stack.headers())
            assert denied.status_code == 403
            metrics = (await http.get(f"{proxy.admin_url}/metrics")).text
            assert (
                'signing_proxy_requests_total{account="main",outcome="forwarded",venue="coinex"} 1.0'
                in metrics
            )
            assert (
                'signing_proxy_policy_decisions_total{result="deny",rule="trader.deny[0] in demo.yaml"} 1.0'
                in metrics
            )
            assert 'signing_proxy_upstream_responses_total{status_class="2xx",venue="coinex"} 1.0' in metrics
            assert "signing_proxy_added_latency_seconds_bucket" in metrics
            assert 'signing_proxy_signing_seconds_count{scheme="coinex"} 1.0' in metrics
            assert 'signing_proxy_vault_lookups_total{result="read"}' in metrics
            assert "/v2/" not in metrics and stack.clients["trader"].token not in metrics
            # The admin endpoints are never on the client port.
            assert (await http.get(f"{proxy.url}/healthz")).status_code == 401
    finally:
        code = await proxy.stop()
    assert code == 0
    assert any(
        '"msg": "request"' in line and '"status": 200' in line for line in proxy.stderr_text.splitlines()
    )
    assert stack.clients["trader"].token not in proxy.stderr_text


@pytest.mark.parametrize("bad", ["venues: {}\n", "venues: [\n"])
def test_serve_refuses_bad_config(tmp_path, bad: str) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(bad)
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", str(path)], capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert str(path) in result.stderr.decode()


def test_serve_says_where_it_listens(stack: LocalStack) -> None:
    port, admin = free_port(), free_port()
    env = {**os.environ, "SIGNING_PROXY_LISTEN__PORT": str(port), "SIGNING_PROXY_ADMIN__PORT": str(admin)}
    command = [sys.executable, "-m", "proxy", "serve", "--config", str(stack.dir / "proxy.yaml")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        # A bound so that a missing line fails the test instead of hanging it.
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().strip() if ready else "(nothing printed)"
        assert line == f"signing-proxy: listening on http://127.0.0.1:{port} (admin http://127.0.0.1:{admin})"
        assert httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=5).status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        process.stdout.close()
