"""The Python servers under test, one process each: ``python -m benchmarks.targets SERVER ...``.

Every server runs on the product's data-plane server config (``proxy.serve.data_plane_config``:
uvicorn, uvloop, httptools with ``GuardedHttpToolsProtocol``, no access log) and logs its own
per-request JSON line at INFO as ``signing-proxy serve`` does, into ``/dev/null`` (the
formatting is paid, the disk is not). Servers (see ``benchmarks.configs``):

* ``signing``: the real product, ``create_app(settings, store=MemoryStore(...))``, with a
  policy directory written for the bench client and fresh demo keys per scheme;
* ``passthrough`` / ``pass-httpx`` / ``pass-httpx-aiohttp``: ``ProxyApp`` with
  ``PassThroughPipeline`` over the production ``Forwarder`` or an ``HttpxForwarder``;
* ``fastapi-httpx``: a FastAPI catch-all route forwarding with ``httpx.AsyncClient``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from fastapi import FastAPI, Request, Response

from benchmarks import configs
from benchmarks.transports import AiohttpForwarder, HttpxForwarder, PyreqwestForwarder
from proxy import logs
from proxy.app import create_app
from proxy.clock import SystemClock
from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.forward import Forwarder, Upstream
from proxy.hygiene import ALWAYS_DROPPED, HOP_BY_HOP, HeaderPolicy
from proxy.messages import Incoming, OutgoingRequest, UpstreamReply
from proxy.metrics import Metrics
from proxy.pipeline import Audit, Pipeline, ReadBody
from proxy.policy.routing import parse_route
from proxy.policy.rules import PolicySet
from proxy.ratelimit.limiter import MemoryLimiter
from proxy.serve import data_plane_config
from proxy.server import ProxyServer
from proxy.settings import build_settings
from proxy.sim.credentials import demo_credentials
from proxy.workers import reuse_port_socket, supervise

MAX_BODY = 1_048_576


class PassThroughPipeline(Pipeline):
    """Forward only: split ``/<venue>/<account>/<path>``, drop hop-by-hop and proxy headers,
    send to one origin. No identity, policy, rate limit, credentials or signing."""

    def __init__(self, origin: str, forwarder: Upstream) -> None:
        clock = SystemClock()
        super().__init__(
            PolicySet(), {}, MemoryStore(), MemoryLimiter(clock), forwarder, clock, HeaderPolicy(())
        )
        self.origin = origin

    async def handle(self, request: Incoming, read_body: ReadBody, audit: Audit) -> UpstreamReply:
        route = parse_route(request.raw_path, request.query)
        headers = self.header_policy.request_headers(request.headers)
        outgoing = OutgoingRequest(request.method, route.target, headers, await read_body())
        return await self.forwarder.send(self.origin, outgoing)


def passthrough_app(upstream: str, transport: str) -> ProxyApp:
    forwarder: Forwarder | HttpxForwarder | AiohttpForwarder | PyreqwestForwarder
    if transport == "http1":
        forwarder = Forwarder()
    elif transport == "pyreqwest":
        forwarder = PyreqwestForwarder()
    elif transport == "aiohttp":
        forwarder = AiohttpForwarder()
    else:
        forwarder = HttpxForwarder(transport)
    pipeline = PassThroughPipeline(upstream, forwarder)
    # Metrics on, as in production: the edge records every request whatever the pipeline.
    return ProxyApp(pipeline, MAX_BODY, startup=forwarder.start, shutdown=forwarder.close, metrics=Metrics())


def signing_app(upstream: str, workdir: Path, redis_url: str | None = None) -> ProxyApp:
    """The product as ``signing-proxy serve`` builds it, credentials in memory instead of Vault;
    with ``redis_url`` the limits live in Redis (what ``--workers`` > 1 requires)."""
    (workdir / "policies").mkdir(parents=True, exist_ok=True)
    (workdir / "policies" / "bench.yaml").write_text(yaml.safe_dump(configs.policy(), sort_keys=False))
    raw = {
        "policies": "policies",
        "venues": configs.venue_settings(upstream),
        "rate_limits": configs.rate_limit_settings(redis_url),
    }
    settings = build_settings(raw, workdir / "bench.yaml", environ={})
    store = MemoryStore(
        {(scheme, configs.ACCOUNT): demo_credentials(scheme) for scheme in configs.SIGNED_SCHEMES}
    )
    return create_app(settings, store=store)


_NOT_FORWARDED = HOP_BY_HOP | ALWAYS_DROPPED


def fastapi_httpx_app(upstream: str) -> FastAPI:
    """What a first version often looks like: FastAPI route + httpx default transport."""
    state: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(base_url=upstream, timeout=10) as client:
            state["client"] = client
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/{venue}/{account}/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def forward(request: Request, path: str) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k not in _NOT_FORWARDED]
        reply = await state["client"].request(
            request.method,
            "/" + path,
            params=request.url.query,
            headers=headers,
            content=await request.body(),
        )
        out = {k: v for k, v in reply.headers.items() if k not in _NOT_FORWARDED}
        return Response(reply.content, status_code=reply.status_code, headers=out)

    return app


def build(server: str, upstream: str, workdir: Path, redis_url: str | None = None) -> Any:
    if server in configs.SIGNING_SERVERS:
        return signing_app(upstream, workdir, redis_url)
    if server == "fastapi-httpx":
        return fastapi_httpx_app(upstream)
    transport = {
        "passthrough": "http1",
        "pass-httpx": "httpx",
        "pass-httpx-aiohttp": "httpx-aiohttp",
        "pass-aiohttp": "aiohttp",
        "pass-pyreqwest": "pyreqwest",
    }
    return passthrough_app(upstream, transport[server])


def main() -> None:
    parser = argparse.ArgumentParser(description="run one server under test")
    parser.add_argument("server", choices=configs.PYTHON_SERVERS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the venue stand-in's origin")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--no-gc-freeze", action="store_true", help="what-if: skip serve's gc.freeze()")
    parser.add_argument("--redis", help="rate_limits backend redis at this URL (signing servers)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (proxy.workers)")
    parser.add_argument("--reuse-port", action="store_true", help="a worker: bind with SO_REUSEPORT")
    args = parser.parse_args()
    if args.workers > 1:
        argv = [sys.executable, "-m", "benchmarks.targets", *sys.argv[1:], "--workers", "1", "--reuse-port"]
        raise SystemExit(supervise("127.0.0.1", args.port, args.workers, lambda _i, _port: (argv, {})))
    logs.configure("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    app = build(args.server, args.upstream, args.workdir / str(os.getpid()), args.redis)
    if not args.no_gc_freeze:
        gc.freeze()  # as proxy/serve.py does: long-lived objects leave the collector's scans
    sockets = [reuse_port_socket("127.0.0.1", args.port)] if args.reuse_port else None
    if isinstance(app, ProxyApp):
        config = data_plane_config(app, "127.0.0.1", args.port)
    else:  # the naive FastAPI baseline: uvicorn as such an app is usually run (no access log)
        config = uvicorn.Config(app, "127.0.0.1", args.port, log_config=None, access_log=False)
    ProxyServer(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
