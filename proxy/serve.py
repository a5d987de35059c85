"""Run the data plane and the admin listener in one process (``signing-proxy serve``)."""

from __future__ import annotations

import asyncio

import uvicorn

from proxy.admin import create_admin_app
from proxy.app import ProxyApp
from proxy.server import GuardedHttpToolsProtocol, ProxyServer, QuietServer
from proxy.settings import Settings


def data_plane_config(app: ProxyApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=GuardedHttpToolsProtocol,
        lifespan="on",
        log_config=None,
        access_log=False,  # our own request log replaces it
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=10,
    )


async def serve(settings: Settings, app: ProxyApp) -> None:
    main = ProxyServer(data_plane_config(app, settings.listen.host, settings.listen.port))
    admin_app = create_admin_app(app.pipeline)
    admin = QuietServer(  # the data-plane server owns the signal handlers
        uvicorn.Config(
            admin_app, host=settings.admin.host, port=settings.admin.port, log_config=None, access_log=False
        )
    )
    admin_task = asyncio.create_task(admin.serve())
    try:
        await main.serve()
    finally:
        admin.should_exit = True
        await admin_task
