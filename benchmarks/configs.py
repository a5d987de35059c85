"""What is measured: one ``Config`` per row of the results table.

A configuration is a *server* (the process the load generator talks to) and the *request*
it is sent. Every proxy configuration gets the same kind of request: a ~140-byte JSON POST
carrying ``Proxy-Authorization``, like an order from a trading service; the venue stand-in
answers a ~190-byte JSON (``benchmarks.upstream``).

Servers (``benchmarks.targets`` builds the Python ones):

* ``upstream``    the venue stand-in itself (the ``direct`` row);
* ``nginx``       nginx ``proxy_pass`` with a keep-alive upstream pool;
* ``passthrough`` the product's HTTP edge (uvicorn + ``ProxyApp`` + production ``Forwarder``,
  the ``proxy.http1`` client) with a pipeline that only splits the route, drops hop-by-hop
  headers and forwards;
* ``pass-httpx`` / ``pass-httpx-aiohttp`` the same with the forwarder swapped for httpx on
  its default transport / on httpx-aiohttp's ``AiohttpTransport`` (the transport choice);
* ``pass-aiohttp`` the same with the previous client, aiohttp (``benchmarks.transports``);
* ``pass-pyreqwest`` the same with pyreqwest (Rust reqwest/hyper), measured and refused;
* ``fastapi-httpx`` a naive FastAPI catch-all route forwarding with ``httpx.AsyncClient``;
* ``signing``     the real product: ``create_app(settings, store=MemoryStore(...))`` with a
  policy directory, rate limits and every venue signer; three configurations hit it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from proxy.ratelimit.profiles import SHIPPED_PROFILES, load_profiles

# The Python servers under test (``benchmarks.targets`` runs them; ``benchmarks.servers``
# starts them). signing-1w / signing-2w: the product on the Redis limiter, 1 and 2 workers.
WORKERS = {"signing-1w": 1, "signing-2w": 2}
SIGNING_SERVERS = ("signing", *WORKERS)
PYTHON_SERVERS = (
    *SIGNING_SERVERS,
    "passthrough",
    "pass-httpx",
    "pass-httpx-aiohttp",
    "pass-aiohttp",
    "pass-pyreqwest",
    "fastapi-httpx",
)

BENCH_TOKEN = "bench-client-token"  # a benchmark-only client token, allowed by ``policy()``
ACCOUNT = "main"


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One HTTP request, sent over and over by the load generator."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body.decode(), "headers": self.headers}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestSpec:
        headers = tuple((str(k), str(v)) for k, v in data.get("headers", ()))
        return cls(data["method"], data["path"], data.get("body", "").encode(), headers)


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    server: str
    request: RequestSpec
    description: str
    transport: str = ""  # the forwarding HTTP client, for the transport comparison
    tags: frozenset[str] = field(default_factory=frozenset)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


CLIENT_HEADERS = (
    ("content-type", "application/json"),
    ("proxy-authorization", f"Bearer {BENCH_TOKEN}"),
    ("user-agent", "bench-trader/1.0"),
)
COINEX_PATH, INVEX_PATH, EVEDEX_PATH = "/v2/spot/order", "/trading/v1/orders", "/api/v2/order/limit"
COINEX_ORDER = _json(
    {
        "market": "BTCUSDT",
        "market_type": "SPOT",
        "side": "buy",
        "type": "limit",
        "amount": "0.0105",
        "price": "63250.50",
        "client_id": "bench-0001",
        "is_hide": False,
    }
)
INVEX_ORDER = _json(
    {
        "symbol": "BTCUSDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.0105",
        "price": "63250.50",
        "client_order_id": "bench-0001",
    }
)
EVEDEX_ORDER = _json(
    {
        "id": "00001-bench-0001",
        "instrument": "BTCUSD:DEMO",
        "side": "BUY",
        "leverage": 10,
        "quantity": "0.0105",
        "limitPrice": "63250.5",
        "postOnly": False,
    }
)


def _proxied(venue: str, path: str, body: bytes) -> RequestSpec:
    return RequestSpec("POST", f"/{venue}/{ACCOUNT}{path}", body, CLIENT_HEADERS)


CONFIGS: tuple[Config, ...] = (
    Config(
        "direct",
        "upstream",
        RequestSpec("POST", COINEX_PATH, COINEX_ORDER, CLIENT_HEADERS),
        "load generator straight to the venue stand-in: the floor every ratio is taken against",
        tags=frozenset({"baseline"}),
    ),
    Config(
        "nginx",
        "nginx",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "nginx proxy_pass (1 worker, keep-alive upstream pool), no signing",
        transport="nginx",
        tags=frozenset({"baseline"}),
    ),
    Config(
        "passthrough",
        "passthrough",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "the product's edge (uvicorn+ProxyApp) and production Forwarder; forwards only: route split, "
        "hop-by-hop hygiene, no identity/policy/limit/signing",
        transport="Forwarder (http1)",
        tags=frozenset({"baseline", "transport"}),
    ),
    Config(
        "pass-httpx-aiohttp",
        "pass-httpx-aiohttp",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "as passthrough, forwarding with httpx.AsyncClient on httpx-aiohttp's AiohttpTransport",
        transport="httpx + AiohttpTransport",
        tags=frozenset({"transport"}),
    ),
    Config(
        "pass-httpx",
        "pass-httpx",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "as passthrough, forwarding with httpx.AsyncClient on its default transport (httpcore)",
        transport="httpx default",
        tags=frozenset({"transport"}),
    ),
    Config(
        "pass-pyreqwest",
        "pass-pyreqwest",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "as passthrough, forwarding with pyreqwest (Rust reqwest/hyper): measured, refused "
        "(not the product's client: README 'Clients measured and refused')",
        transport="pyreqwest",
        tags=frozenset({"transport"}),
    ),
    Config(
        "pass-aiohttp",
        "pass-aiohttp",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "as passthrough, forwarding with aiohttp's ClientSession (the product's client before "
        "proxy.http1, with its exactly-once middleware): the comparison for the client choice",
        transport="aiohttp",
        tags=frozenset({"transport"}),
    ),
    Config(
        "fastapi-httpx",
        "fastapi-httpx",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "naive baseline: FastAPI catch-all route + httpx default transport, no signing",
        transport="httpx default",
        tags=frozenset({"baseline"}),
    ),
    Config(
        "coinex",
        "signing",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "the product: identity, policy, rate limits, MemoryStore credentials, CoinEx HMAC-SHA256",
        transport="Forwarder (http1)",
        tags=frozenset({"signed"}),
    ),
    Config(
        "invex",
        "signing",
        _proxied("invex", INVEX_PATH, INVEX_ORDER),
        "the product with Invex RSA-PSS-2048 over the JSON body (+expire_at, signature)",
        transport="Forwarder (http1)",
        tags=frozenset({"signed"}),
    ),
    Config(
        "evedex",
        "signing",
        _proxied("evedex", EVEDEX_PATH, EVEDEX_ORDER),
        "the product with EVEDEX JWT bearer (SIWE login once) + EIP-712 limit-order signature",
        transport="Forwarder (http1)",
        tags=frozenset({"signed"}),
    ),
    Config(
        "coinex-1w",
        "signing-1w",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "as coinex, limits in Redis (what --workers > 1 requires), one worker pinned to one core",
        transport="Forwarder (http1)",
        tags=frozenset({"signed", "workers"}),
    ),
    Config(
        "coinex-2w",
        "signing-2w",
        _proxied("coinex", COINEX_PATH, COINEX_ORDER),
        "as coinex-1w with two workers (SO_REUSEPORT) on both cores, which the load generator "
        "and venue stand-in share",
        transport="Forwarder (http1)",
        tags=frozenset({"signed", "workers"}),
    ),
)

BY_NAME = {config.name: config for config in CONFIGS}
QUICK = ("direct", "coinex")


def select(names: list[str] | None) -> tuple[Config, ...]:
    """The named configurations in table order (all but the opt-in ones when ``names`` is empty)."""
    if not names:
        return tuple(config for config in CONFIGS if "opt-in" not in config.tags)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(BY_NAME)}")
    return tuple(config for config in CONFIGS if config.name in names)


# --- what the ``signing`` server is configured with ------------------------------------


SIGNED_SCHEMES = ("coinex", "invex", "evedex")
HUGE_RATE = {"per_second": 1_000_000, "burst": 1_000_000}  # charged on every request, never refuses


def rate_limit_settings(redis_url: str | None = None) -> dict[str, Any]:
    """``rate_limits``: the shipped venue profiles stay on (every request is matched to its
    groups and charged, as in production) with every group's limit raised out of reach."""
    profiles = load_profiles(SHIPPED_PROFILES)
    overrides = {
        scheme: {group.name: {"limit": HUGE_RATE["burst"]} for group in profiles[scheme].groups}
        for scheme in SIGNED_SCHEMES
        if scheme in profiles
    }
    if redis_url:
        return {"backend": "redis", "url": redis_url, "overrides": overrides}
    return {"backend": "memory", "overrides": overrides}


def venue_settings(upstream: str) -> dict[str, Any]:
    """The ``venues`` section: every signed venue points at the venue stand-in."""
    venues: dict[str, Any] = {
        scheme: {"scheme": scheme, "upstream": upstream, "accounts": [ACCOUNT]} for scheme in SIGNED_SCHEMES
    }
    venues["evedex"]["auth_upstream"] = upstream
    return venues


def policy() -> dict[str, Any]:
    """The bench client's policy: a few rules like a real desk's, with per-client and
    per-account limits large enough never to refuse (so the limiter runs but never bites)."""
    allow = [
        {"venue": "*", "methods": ["GET"], "paths": ["/**"]},
        {
            "venue": "coinex",
            "accounts": [ACCOUNT],
            "methods": ["POST"],
            "paths": [COINEX_PATH, "/v2/spot/cancel-order"],
        },
        {"venue": "invex", "accounts": [ACCOUNT], "methods": ["POST"], "paths": [INVEX_PATH]},
        {"venue": "evedex", "accounts": [ACCOUNT], "methods": ["POST", "PUT"], "paths": ["/api/v2/order/*"]},
    ]
    client = {
        "token_sha256": hashlib.sha256(BENCH_TOKEN.encode()).hexdigest(),
        "rate_limit": HUGE_RATE,
        "allow": allow,
        "deny": [{"venue": "*", "paths": ["**/withdraw*", "**/crypto-withdrawals*"]}],
    }
    accounts = {f"{scheme}/{ACCOUNT}": {"rate_limit": HUGE_RATE} for scheme in SIGNED_SCHEMES}
    return {"version": 1, "clients": {"bench": client}, "accounts": accounts}
