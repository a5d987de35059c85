"""Reload under load (no failed request) and SIGHUP / SIGTERM on the real serve process."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
import yaml

from proxy.dev.serve_process import ServeProcess
from proxy.dev.stack import LocalStack
from proxy.identity import token_sha256
from proxy.reload import Reloader
from proxy.sim.base import SimResponse

pytestmark = pytest.mark.asyncio(loop_scope="session")

NEWCOMER = "newcomer-token-for-reload-tests"


def _newcomer_policy() -> str:
    allow = [{"venue": "coinex", "methods": ["GET"], "paths": ["/v2/assets/**"]}]
    return yaml.safe_dump(
        {"version": 1, "clients": {"newcomer": {"token_sha256": token_sha256(NEWCOMER), "allow": allow}}}
    )


async def test_reload_under_load_drops_nothing(stack: LocalStack) -> None:
    assert stack.app is not None
    reloader = Reloader(stack.app.pipeline, stack.settings)
    extra = stack.dir / "policies" / "zz-newcomer.yaml"
    url = stack.url("coinex", "/v2/assets/spot/balance")
    async with httpx.AsyncClient(timeout=20) as http:

        async def load() -> list[int]:
            return [(await http.get(url, headers=stack.headers())).status_code for _ in range(40)]

        async def flip() -> None:
            for round_ in range(10):
                if round_ % 2 == 0:
                    extra.write_text(_newcomer_policy())
                else:
                    extra.unlink()
                assert reloader.reload()
                await asyncio.sleep(0.01)

        results = await asyncio.gather(load(), load(), load(), flip())
        statuses = [s for batch in results[:3] for s in batch]
        assert statuses == [200] * 120
        extra.write_text(_newcomer_policy())
        assert reloader.reload()
        assert (await http.get(url, headers={"Proxy-Authorization": f"Bearer {NEWCOMER}"})).status_code == 200
        extra.unlink()
        assert reloader.reload()
        assert (await http.get(url, headers={"Proxy-Authorization": f"Bearer {NEWCOMER}"})).status_code == 401


async def test_sighup_reloads_policies_and_sigterm_drains_in_flight(stack: LocalStack, tmp_path) -> None:
    # A private copy of the config and policies, so this process can be reloaded on its own.
    policies = tmp_path / "policies"
    policies.mkdir()
    for path in (stack.dir / "policies").glob("*.yaml"):
        (policies / path.name).write_text(path.read_text())
    config = yaml.safe_load((stack.dir / "proxy.yaml").read_text())
    config["policies"] = str(policies)
    config_path = tmp_path / "proxy.yaml"
    config_path.write_text(yaml.safe_dump(config))
    proxy = await ServeProcess(config_path, env={"SIGNING_PROXY_WATCH_INTERVAL_S": "0"}).start()
    url = f"{proxy.url}/coinex/main/v2/assets/spot/balance"
    newcomer = {"Proxy-Authorization": f"Bearer {NEWCOMER}"}
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            assert (await http.get(url, headers=newcomer)).status_code == 401
            (policies / "zz-newcomer.yaml").write_text(_newcomer_policy())
            proxy.signal(signal.SIGHUP)
            for _ in range(50):
                if (await http.get(url, headers=newcomer)).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("SIGHUP did not load the new policy")
            # SIGTERM with a request in flight: it completes, then the process exits 0.
            stack.sims["coinex"].scripted.append(
                SimResponse(200, b'{"code": 0, "data": "slow"}', delay_s=1.0)
            )
            in_flight = asyncio.create_task(http.get(url, headers=stack.headers()))
            await asyncio.sleep(0.3)
            proxy.signal(signal.SIGTERM)
            response = await in_flight
            assert response.status_code == 200 and response.json()["data"] == "slow"
    finally:
        code = await proxy.stop()
    assert code == 0
