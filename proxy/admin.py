"""The admin listener (never the client port): ``/healthz``, ``/readyz``, ``/metrics``.

FastAPI is used here, off the hot path. Readiness says which check fails, so an
operator reading ``kubectl describe`` knows whether Vault, a secret, Redis or the
policies are at fault. Secret checks go through the credential cache (cheap) and report
field *names* only.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from proxy.credentials.base import require_fields
from proxy.errors import CredentialsUnavailable
from proxy.metrics import CONTENT_TYPE, Metrics
from proxy.pipeline import Pipeline


async def readiness(pipeline: Pipeline) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {"policies": bool(pipeline.policies.sources)}
    for component, name in ((pipeline.store, "vault"), (pipeline.limiter, "redis")):
        ping = getattr(component, "ping", None)
        if ping is not None:
            checks[name] = await ping()
    secrets: dict[str, str] = {}
    for venue in pipeline.venues.values():
        for account in sorted(venue.accounts):
            secrets[f"{venue.name}/{account}"] = await _secret_state(pipeline, venue.name, account)
    checks["secrets"] = secrets
    ready = all(v for k, v in checks.items() if k != "secrets") and all(s == "ok" for s in secrets.values())
    return ready, checks


async def _secret_state(pipeline: Pipeline, venue: str, account: str) -> str:
    try:
        creds = await pipeline.store.get(venue, account)
        require_fields(creds, pipeline.venues[venue].required_fields(account), venue, account)
    except CredentialsUnavailable as error:
        return error.message
    return "ok"


def create_admin_app(pipeline: Pipeline, metrics: Metrics | None = None) -> FastAPI:
    app = FastAPI(title="signing-proxy admin", docs_url=None, redoc_url=None, openapi_url=None)
    metrics = metrics or Metrics.disabled()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready, checks = await readiness(pipeline)
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app
