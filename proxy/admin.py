"""The admin listener (never the client port): ``/healthz``, ``/readyz``, ``/metrics``.

FastAPI is used here, off the hot path. ``/readyz`` answers from ``proxy.readiness``:
ready means this replica can serve (config, policies, listener, warm-up attempted); the
body says what is degraded (Vault, Redis, each account's secret, by field *names* only),
so an operator reading ``kubectl describe`` or the alerts knows what is at fault.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from proxy.metrics import CONTENT_TYPE, Metrics
from proxy.pipeline import Pipeline
from proxy.readiness import Health


def create_admin_app(
    pipeline: Pipeline, metrics: Metrics | None = None, health: Health | None = None
) -> FastAPI:
    app = FastAPI(title="signing-proxy admin", docs_url=None, redoc_url=None, openapi_url=None)
    metrics = metrics or Metrics.disabled()
    background = health is not None  # its own task keeps it current; else check per request
    monitor = health or Health(pipeline, metrics)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not background:
            await monitor.check()
        ready, body = monitor.report()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        monitor.report()  # the ready gauge follows the listener too, not only the last pass
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app
