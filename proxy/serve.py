"""Run the data plane and the admin listener in one process (``signing-proxy serve``)."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket

import uvicorn

from proxy.admin import create_admin_app
from proxy.edge import ProxyApp
from proxy.reload import Reloader
from proxy.server import ClientLimits, GuardedHttpToolsProtocol, ProxyServer, QuietServer
from proxy.settings import Listen, Settings


def client_limits(listen: Listen) -> ClientLimits:
    return ClientLimits(listen.header_timeout_s, listen.body_timeout_s, listen.max_connections)


def data_plane_config(
    app: ProxyApp,
    host: str,
    port: int,
    drain_timeout_s: int = 10,
    ws_max_size: int = 16 * 1024 * 1024,
    limits: ClientLimits | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=GuardedHttpToolsProtocol.with_limits(limits or ClientLimits(), app.metrics.connection_refused),
        lifespan="on",
        log_config=None,
        access_log=False,  # our own request log replaces it
        server_header=False,
        date_header=False,
        proxy_headers=False,  # identity comes from the socket peer, never from X-Forwarded-For
        timeout_graceful_shutdown=drain_timeout_s,  # SIGTERM: in-flight requests get this long
        ws_max_size=ws_max_size,  # uvicorn closes 1009 above this before buffering more
    )


async def serve(settings: Settings, app: ProxyApp, sockets: list[socket.socket] | None = None) -> None:
    """``sockets``: bound sockets to listen on (a ``--workers`` child's SO_REUSEPORT one)."""
    config = data_plane_config(
        app,
        settings.listen.host,
        settings.listen.port,
        settings.drain_timeout_s,
        ws_max_size=settings.websocket.max_frame_bytes,
        limits=client_limits(settings.listen),
    )
    main = ProxyServer(config)
    reloader = Reloader(app.pipeline, settings, events=app.metrics.session)
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.request_reload)
    watcher = (
        asyncio.create_task(reloader.watch(settings.watch_interval_s)) if settings.watch_interval_s else None
    )
    if app.health is not None:
        app.health.listening = lambda: main.started  # ready only once the data plane listens
    admin_app = create_admin_app(app.pipeline, app.metrics, app.health)
    admin = QuietServer(  # the data-plane server owns the signal handlers
        uvicorn.Config(
            admin_app,
            host=settings.admin.host,
            port=settings.admin.port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
        )
    )
    admin_task = asyncio.create_task(admin.serve())
    announce = asyncio.create_task(_announce(main, admin))
    # Everything built so far (modules, settings, compiled policies) lives for the process:
    # freezing it keeps full collections from scanning ~100k objects (measured: a 46-50 ms
    # pause, the p99 at 16 connections; 11-12 ms with it).
    gc.freeze()
    try:
        await main.serve(sockets=sockets)
    finally:
        announce.cancel()
        admin.should_exit = True
        await admin_task
        if watcher is not None:
            watcher.cancel()


async def _announce(main: uvicorn.Server, admin: uvicorn.Server) -> None:
    """Print where both listeners are, once both are up (the JSON logs go to stderr)."""
    while not (main.started and admin.started):
        await asyncio.sleep(0.05)
    print(f"signing-proxy: listening on {_url(main)} (admin {_url(admin)})", flush=True)


def _url(server: uvicorn.Server) -> str:
    # The bound address, so that port 0 shows the port the system chose.
    for listener in server.servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    return f"http://{server.config.host}:{server.config.port}"
