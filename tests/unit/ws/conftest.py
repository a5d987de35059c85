"""A stream-capable proxy in-process: real policies, signers and simulated venues, no sockets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.app import build_rate_limits
from proxy.clock import SystemClock
from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.identity import token_sha256
from proxy.messages import OutgoingRequest, UpstreamReply
from proxy.ratelimit.gate import RateGate, RateLimits
from proxy.ratelimit.limiter import MemoryLimiter
from proxy.settings import WebSocketSettings, build_settings
from proxy.signers import SIGNERS
from proxy.sim import SIMULATORS
from proxy.sim.base import SimVenue
from proxy.sim.credentials import demo_credentials, sim_keys
from proxy.venue import Venue
from proxy.ws.gateway import StreamGateway
from tests.factories import build_pipeline
from tests.unit.ws.harness import AsgiClient, EchoConnector, SimConnector

STREAMER, POSTER, LIMITED = "streamer-token", "poster-token", "limited-token"
POLICY = f"""
version: 1
clients:
  streamer:
    token_sha256: {token_sha256(STREAMER)}
    allow:
      - {{venue: "*", methods: [GET], paths: ["/**"]}}
    deny:
      - {{venue: coinex, paths: ["/v2/futures"]}}
  poster:
    token_sha256: {token_sha256(POSTER)}
    allow:
      - {{venue: coinex, methods: [POST], paths: ["/**"]}}
  limited:
    token_sha256: {token_sha256(LIMITED)}
    rate_limit: {{per_second: 0.001, burst: 2}}
    allow:
      - {{venue: "*", methods: [GET], paths: ["/**"]}}
"""
STREAM_SCHEMES = ("coinex", "icrypex", "evedex")


class InProcessHttp:
    """The forwarder for EVEDEX's HTTP login: origin -> ASGI app via httpx."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        transport = httpx.ASGITransport(app=self.apps[origin])
        async with httpx.AsyncClient(transport=transport, base_url=origin) as client:
            response = await client.request(
                request.method, request.target, headers=list(request.headers), content=request.body
            )
        return UpstreamReply(response.status_code, tuple(response.headers.multi_items()), response.content)


@dataclass
class World:
    app: ProxyApp
    gateway: StreamGateway
    sims: dict[str, SimVenue]
    creds: dict[str, dict[str, str]]
    connector: Any
    limiter: MemoryLimiter

    def connect(self, path: str, token: str | None = STREAMER, **options: Any) -> AsgiClient:
        headers = [("Proxy-Authorization", f"Bearer {token}")] if token else []
        return AsgiClient(self.app, path, headers, **options)


def _venues() -> dict[str, Venue]:
    venues = {}
    for scheme in (*STREAM_SCHEMES, "haqqex"):
        options = {"auth_upstream": "http://evedex.sim"} if scheme == "evedex" else {}
        ws_origin = f"ws://{scheme}.sim" if scheme in STREAM_SCHEMES else None
        accounts = frozenset({"main", "wrong", "absent"})
        venues[scheme] = Venue(scheme, f"http://{scheme}.sim", accounts, SIGNERS[scheme](options), ws_origin)
    venues["dead"] = Venue(
        "dead", "http://dead.sim", frozenset({"main"}), SIGNERS["coinex"](), "ws://dead.sim"
    )
    return venues


def _profiles(tmp_path: Path, rate_limits: dict[str, Any]) -> RateLimits:
    """The shipped venue profiles for the world's venues, as ``create_app`` builds them."""
    venues: dict[str, Any] = {}
    for name, venue in _venues().items():
        venues[name] = {
            "scheme": venue.signer.scheme,
            "upstream": venue.origin,
            "accounts": sorted(venue.accounts),
        }
        if venue.signer.scheme == "evedex":
            venues[name]["auth_upstream"] = venue.origin
    raw = {"venues": venues, "rate_limits": rate_limits}
    return build_rate_limits(build_settings(raw, tmp_path / "proxy.yaml", {}))


def _wrong(scheme: str, fields: dict[str, str]) -> dict[str, str]:
    """The same API key with another secret: the venue knows the key, the signature fails."""
    if scheme == "evedex":
        return {**fields, "wallet_private_key": "0x" + "42" * 32}  # a wallet the venue does not know
    return {**fields, "secret_key": demo_credentials(scheme)["secret_key"]}


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., World]:
    (tmp_path / "streams.yaml").write_text(POLICY)

    def build(connector: Any = None, rate_limits: dict[str, Any] | None = None, **ws: Any) -> World:
        """``rate_limits``: a ``rate_limits:`` config section; the shipped venue profiles apply."""
        creds = {scheme: demo_credentials(scheme) for scheme in STREAM_SCHEMES}
        sims = {scheme: SIMULATORS[scheme](sim_keys(fields), None) for scheme, fields in creds.items()}
        secrets = {(s, "main"): fields for s, fields in creds.items()}
        secrets |= {(s, "wrong"): _wrong(s, fields) for s, fields in creds.items()}
        secrets[("dead", "main")] = creds["coinex"]
        clock = SystemClock()
        limiter = MemoryLimiter(clock)
        pipeline = build_pipeline(
            tmp_path,
            _venues(),
            MemoryStore(secrets),
            InProcessHttp({f"http://{s}.sim": sim for s, sim in sims.items()}),
            clock=clock,
            limiter=limiter,
            rate_gate=None if rate_limits is None else RateGate(limiter, _profiles(tmp_path, rate_limits)),
        )
        connector = connector or SimConnector({f"ws://{s}.sim": sim for s, sim in sims.items()})
        gateway = StreamGateway(pipeline, WebSocketSettings(**ws), connector, reply_timeout_s=2)
        return World(ProxyApp(pipeline, 1024, streams=gateway), gateway, sims, creds, connector, limiter)

    return build


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


@pytest.fixture
def echo_world(make_world: Callable[..., World]) -> Callable[..., World]:
    """A world whose venue echoes (EVEDEX: no login at connect, so the relay starts at once)."""

    def build(**ws: Any) -> World:
        return make_world(EchoConnector(), **ws)

    return build
