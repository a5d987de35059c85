"""Readiness and degradation: what ``/readyz`` answers and what the gauges say.

The contract (issue 15): a replica is *ready* when its config and policies are loaded,
its listener is up and the first credential warm-up has been attempted. Shared
dependencies (Vault, Redis) and one account's secret are the same for every replica, so
they never make it unready: a short Vault outage or one bad secret would otherwise take
every pod out of its Service at once (and, as a sidecar, the trading app's pod with it).
They are reported instead, per dependency and per account, in the ``/readyz`` body and as
metrics (``signing_proxy_dependency_up``, ``signing_proxy_account_credentials_ok``), for
alerts to act on. ``readiness: strict`` keeps the old contract (503 on any of them).

Dependency checks go over the network, and a blackholed Vault would make a probe time
out; so a background pass (every ``INTERVAL_S``) checks them and ``/readyz`` answers from
its last result at once. The first pass is the warm-up: it reads every account's secret
through the credential cache, so the first requests find them cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from proxy.errors import CredentialsUnavailable
from proxy.metrics import Metrics
from proxy.pipeline import Pipeline
from proxy.venue import Venue

log = logging.getLogger("signing_proxy.readiness")
INTERVAL_S = 5.0


class Health:
    def __init__(
        self,
        pipeline: Pipeline,
        metrics: Metrics | None = None,
        strict: bool = False,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.pipeline = pipeline
        self.interval_s = interval_s
        self.metrics = metrics or Metrics.disabled()
        self.strict = strict
        self.listening: Callable[[], bool] = lambda: True  # proxy.serve: the data-plane server started
        self.warmed_up = False  # the first pass (the credential warm-up) has been attempted
        self.dependencies: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # a broken pass must not end the loop
                log.error("health check failed", extra={"error": type(exc).__name__})
                self.warmed_up = True
            await asyncio.sleep(self.interval_s)

    async def check(self) -> None:
        """One pass: every dependency and every account's secret, concurrently."""
        pipeline = self.pipeline
        probes = pipeline.dependency_probes()
        if "redis" in probes:
            probes["redis"] = _ping_state(probes["redis"])
        keys = pipeline.accounts()
        results = await asyncio.gather(
            *probes.values(), *(_secret_state(pipeline, venue, account) for venue, account in keys)
        )
        self.dependencies = dict(zip(probes, results[: len(probes)], strict=True))
        self.secrets = {
            f"{v.name}/{a}": state for (v, a), state in zip(keys, results[len(probes) :], strict=True)
        }
        self.warmed_up = True
        self.report()

    def report(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)`` from the local state and the last pass; sets the gauges."""
        local = {
            "config": "ok",  # a process that is running has loaded and validated its config
            "policies": "ok" if self.pipeline.policies.sources else "none loaded",
            "listener": "ok" if self.listening() else "not yet",
            "warm_up": "done" if self.warmed_up else "pending",
        }
        degraded = [name for name, state in self.dependencies.items() if state != "ok"]
        degraded += [key for key, state in self.secrets.items() if state != "ok"]
        ready = local["policies"] == "ok" and local["listener"] == "ok" and self.warmed_up
        if self.strict:
            ready = ready and not degraded
        self.metrics.health(ready, self.dependencies, self.secrets)
        body = {
            "ready": ready,
            "mode": "strict" if self.strict else "local",
            "status": "degraded" if degraded else ("ok" if ready else "starting"),
            "degraded": degraded,
            "checks": {**local, **self.dependencies, "secrets": dict(self.secrets)},
        }
        return ready, body


async def _ping_state(ping: Any) -> str:
    return "ok" if await ping else "unreachable"


async def _secret_state(pipeline: Pipeline, venue: Venue, account: str) -> str:
    # Through the credential cache: a cached secret is "ok" while Vault is down (within
    # stale_grace_s). Messages name fields, never values (CredentialsUnavailable).
    try:
        await pipeline.credentials(venue, account)
    except CredentialsUnavailable as error:
        return error.message
    return "ok"
