"""Path confusion, property-based: whatever path a client crafts, a request reaches the
venue only if the path *as forwarded* matches an allow rule and the path *as the venue
reads it* matches no deny rule, and the forwarded path is byte for byte the one the client
sent.

The oracle is an independent, naive glob matcher (segment by segment) and an independent
reading of the path by the venue's server (``tests.unit.path_oracle``), not the proxy's
compiled regular expressions. Requests are driven straight into the ASGI app with
a hand-built scope, so no HTTP client normalises the path on the way in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.messages import OutgoingRequest, UpstreamReply
from tests.factories import build_pipeline, venue
from tests.unit.path_oracle import glob_matches, venue_reading

ALLOW = ["/v2/spot/**", "/v2/assets/*"]
DENY = ["**/withdraw*"]
POLICY = f"""
version: 1
clients:
  bot:
    loopback: true
    allow: [{{venue: coinex, methods: [GET], paths: {ALLOW}}}]
    deny: [{{venue: "*", paths: {DENY}}}]
"""

SEGMENTS = [
    "v2",
    "spot",
    "assets",
    "order",
    "withdraw",
    "withdrawal",
    "WITHDRAW",
    "Withdraw",
    "withdraw.",
    "..",
    ".",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2f",
    "%2F",
    "%252f",
    "%5c",
    "\\",
    "",
    "a;b",
    "withdraw;x",
    "\uff57ithdraw",
    "with%64raw",
    "x%20y",
    "%00",
    "spot%2fwithdraw",
    "\t",
    "~",
]


def oracle_allows(path: str) -> bool:
    venue = venue_reading(path)
    allowed = any(glob_matches(g, path, as_sent=True) for g in ALLOW)
    return allowed and not any(glob_matches(g, venue) for g in DENY)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[OutgoingRequest] = []

    async def send(self, origin: str, request: OutgoingRequest) -> UpstreamReply:
        self.sent.append(request)
        return UpstreamReply(200, (("content-type", "application/json"),), b'{"code":0}')


def _app(tmp: Path) -> tuple[ProxyApp, Recorder]:
    (tmp / "p.yaml").write_text(POLICY)
    upstream = Recorder()
    store = MemoryStore({("coinex", "main"): {"api_key": "k", "secret_key": "s"}})
    pipeline = build_pipeline(tmp, [venue("coinex", url="http://venue")], store, upstream)
    return ProxyApp(pipeline, 1024), upstream


async def _call(app: ProxyApp, raw_path: bytes) -> int:
    scope = {
        "type": "http",
        "method": "GET",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [(b"host", b"proxy")],
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])  # type: ignore[call-overload]


@settings(max_examples=400, deadline=None)
@given(segments=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6))
def test_forwarded_iff_policy_admits_the_forwarded_path(tmp_path_factory, segments: list[str]) -> None:
    app, upstream = _app(tmp_path_factory.mktemp("p"))
    upstream_path = "/" + "/".join(segments)
    raw = ("/coinex/main" + upstream_path).encode("utf-8")
    status = asyncio.run(_call(app, raw))
    if upstream.sent:
        forwarded = upstream.sent[0].path
        assert forwarded == upstream_path  # byte for byte: nothing normalised
        assert oracle_allows(forwarded), forwarded
        assert status == 200
    else:
        assert status in (400, 403)
        if status == 403:  # the path was clean, so the policy must be what refused it
            assert not oracle_allows(upstream_path), upstream_path


def test_oracle_sanity() -> None:
    assert oracle_allows("/v2/spot/order")
    assert not oracle_allows("/v2/spot")  # another spelling of /v2/spot/: allow rules match as sent
    assert oracle_allows("/v2/assets/balance")
    assert not oracle_allows("/v2/assets/a/b")
    assert not oracle_allows("/v2/spot/withdraw")
    assert not oracle_allows("/v2/spot/x/withdrawal")
    assert not oracle_allows("/v2/spot/WITHDRAW")  # a case-insensitive server routes it to withdraw
    assert not oracle_allows("/v2/spot/withdraw;x")  # Tomcat cuts ';x' off
    assert not oracle_allows("/v2/spot/with%64raw")
