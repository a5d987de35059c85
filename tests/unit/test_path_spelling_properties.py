"""Path spellings, property-based, end to end: hypothesis spells venue endpoints every way a
client can (letter case, percent-escapes of any character, a trailing slash, ``;params``,
``+``, encoded spaces) and drives each through the proxy's ASGI app to the simulated CoinEx
(which routes as a standard web server: decoded, case-insensitive, trailing slash ignored).

Properties, judged by an independent reading of the path (``tests.unit.path_oracle``):

* a forwarded request is byte for byte the client's, is allowed by a rule *as spelled*, and
  the endpoint the venue routes it to matches no deny rule (so the simulated venue never
  executes a withdrawal);
* a path already in canonical spelling is forwarded exactly when the policy allows it;
* every spelling the proxy accepts is charged to the rate-limit groups of the endpoint the
  venue routes it to (the shipped CoinEx profile, read here as plain YAML).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.app import build_rate_limits
from proxy.credentials.memory import MemoryStore
from proxy.edge import ProxyApp
from proxy.messages import OutgoingRequest
from proxy.settings import build_settings
from proxy.sim import SIMULATORS
from proxy.sim.credentials import demo_credentials, sim_keys
from tests.factories import build_pipeline, venue
from tests.unit.inprocess import InProcessUpstream
from tests.unit.path_oracle import glob_matches, venue_reading

REPO = Path(__file__).resolve().parents[2]
ALLOW = [("GET", "/v2/**"), ("POST", "/v2/spot/*"), ("POST", "/v2/assets/*")]
DENY = [(None, "**/withdraw*"), ("POST", "/v2/spot/cancel-all-order")]
POLICY = {
    "version": 1,
    "clients": {
        "bot": {
            "loopback": True,
            "allow": [{"venue": "coinex", "methods": [m], "paths": [p]} for m, p in ALLOW],
            "deny": [{"venue": "*", "paths": [p], **({"methods": [m]} if m else {})} for m, p in DENY],
        }
    },
}
ENDPOINTS = [
    "/v2/assets/withdraw",
    "/v2/assets/withdrawal-address",
    "/v2/spot/cancel-all-order",
    "/v2/spot/order",
    "/v2/spot/batch-order",
    "/v2/spot/pending-order",
    "/v2/assets/spot/balance",
    "/v2/account/info",
    "/v2/futures/order",
]
UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
BODY = json.dumps({"market": "BTCUSDT", "ccy": "USDT", "amount": "1", "orders": [{}, {}]}).encode()


@st.composite
def spelling(draw: st.DrawFn) -> str:
    """One spelling of one endpoint: each character kept, case-flipped or percent-encoded."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    out = []
    for char in endpoint:
        if char == "/":
            out.append(char)
            continue
        how = draw(st.sampled_from(["keep"] * 6 + ["upper", "escape", "escape-lower"]))
        if how == "upper":
            out.append(char.upper())
        elif how == "escape":
            out.append(f"%{ord(char):02X}")
        elif how == "escape-lower":
            out.append(f"%{ord(char):02x}")
        else:
            out.append(char)
    path = "".join(out)
    suffix = draw(st.sampled_from(["", "", "", "/", ";x", ";jsessionid=1/", "+", "%20", "%09", "%3A", ":x"]))
    return path + suffix


def _world(tmp: Path) -> dict[str, Any]:
    (tmp / "policies").mkdir()
    (tmp / "policies" / "bot.yaml").write_text(yaml.safe_dump(POLICY))
    venues = {"coinex": {"scheme": "coinex", "upstream": "http://coinex.sim", "accounts": ["main"]}}
    config = build_settings({"venues": venues, "policies": "policies"}, tmp / "proxy.yaml", {})
    creds = demo_credentials("coinex")
    sim = SIMULATORS["coinex"](sim_keys(creds), None)
    upstream = InProcessUpstream(sim)
    pipeline = build_pipeline(
        config.policies, [venue("coinex")], MemoryStore({("coinex", "main"): creds}), upstream
    )
    limits = build_rate_limits(config)
    return {"app": ProxyApp(pipeline, 1 << 20), "sim": sim, "upstream": upstream, "limits": limits}


async def _call(app: ProxyApp, method: str, raw_path: bytes, body: bytes) -> int:
    scope = {
        "type": "http",
        "method": method,
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [(b"host", b"proxy"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def _matches(rules: list[tuple[str | None, str]], method: str, path: str) -> bool:
    return any((m is None or m == method) and glob_matches(g, path) for m, g in rules)


def _profile_groups(method: str, endpoint: str) -> set[str]:
    """The shipped CoinEx profile's groups for an endpoint, read as plain YAML."""
    profile = yaml.safe_load((REPO / "proxy" / "ratelimit" / "data" / "coinex.yaml").read_text())
    groups = set()
    for name, group in profile["groups"].items():
        if group.get("streams"):  # charged for stream opens only, never for a REST call
            continue
        for rule in group["match"]:
            if rule.get("methods") and method not in rule["methods"]:
                continue
            if any(glob_matches(g, endpoint) for g in rule["paths"]) and not any(
                glob_matches(g, endpoint) for g in rule.get("unless", [])
            ):
                groups.add(name)
    return groups


@settings(max_examples=300, deadline=None)
@given(path=spelling(), method=st.sampled_from(["GET", "POST"]))
def test_forwarded_spellings_satisfy_the_policy_as_the_venue_reads_them(
    tmp_path_factory, path: str, method: str
) -> None:
    world = _world(tmp_path_factory.mktemp("w"))
    status = asyncio.run(_call(world["app"], method, f"/coinex/main{path}".encode(), BODY))
    routed = venue_reading(path)  # the endpoint the venue acts on
    sent = world["upstream"].sent
    assert not world["sim"].handler.__self__.withdrawals  # never executed, whatever the spelling
    if sent:
        assert sent[0].path == path and status == 200  # byte for byte
        assert _matches(ALLOW, method, path), path  # allowed as spelled
        assert not _matches(DENY, method, routed), (path, routed)  # not denied as the venue reads it
    else:
        assert status in (400, 403), status
    if path == routed:  # canonical spelling: the decision is exactly the policy's
        expected = _matches(ALLOW, method, path) and not _matches(DENY, method, path)
        assert bool(sent) is expected, (method, path, status)
    if status != 400:  # every spelling the proxy accepts pays where the venue routes it
        charge = world["limits"].charge("coinex", "main", OutgoingRequest(method, path, (), BODY))
        charged = {bucket.name.split(" ")[2] for bucket in charge.buckets}
        assert charged == _profile_groups(method, routed), (method, path, routed)
