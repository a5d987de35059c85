"""In-process plumbing for pipeline tests: no sockets.

``InProcessUpstream`` stands where the forwarder stands and hands each signed request to
a simulated venue's ASGI app; ``proxy_client`` talks to the proxy's ASGI edge as a client
from ``peer``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from proxy.messages import OutgoingRequest, UpstreamReply


class InProcessUpstream:
    """Routes each origin to an ASGI app (or every origin to one app); records what was sent."""

    def __init__(self, apps: Mapping[str, Any] | Any) -> None:
        self.apps = apps
        self.sent: list[OutgoingRequest] = []

    def _app(self, origin: str) -> Any:
        return self.apps[origin] if isinstance(self.apps, Mapping) else self.apps

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        self.sent.append(request)
        transport = httpx.ASGITransport(app=self._app(origin))
        async with httpx.AsyncClient(transport=transport, base_url=origin) as client:
            response = await client.request(
                request.method, request.target, headers=list(request.headers), content=request.body
            )
        return UpstreamReply(response.status_code, tuple(response.headers.multi_items()), response.content)


def proxy_client(app: Any, peer: str = "10.1.2.3") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://proxy")
