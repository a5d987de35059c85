"""The admin listener (never the client port): ``/healthz`` and ``/readyz``.

FastAPI is used here, off the hot path. Readiness says which check fails, so an
operator reading ``kubectl describe`` knows whether Vault or the policies are at fault.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from proxy.pipeline import Pipeline


def create_admin_app(pipeline: Pipeline) -> FastAPI:
    app = FastAPI(title="signing-proxy admin", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {"policies": bool(pipeline.policies.sources)}
        ping = getattr(pipeline.store, "ping", None)
        if ping is not None:
            checks["vault"] = await ping()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return app
