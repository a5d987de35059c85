from __future__ import annotations

import ast
from pathlib import Path

import pytest

import proxy
from proxy.errors import Unauthenticated
from proxy.hygiene import HeaderPolicy, response_headers
from proxy.identity import identify
from proxy.policy.loader import load_policies
from proxy.signers import owned_headers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"


@pytest.fixture(scope="module")
def policies():
    return load_policies(FIXTURES / "basic")


@pytest.mark.parametrize(
    ("header", "peer", "client"),
    [
        ("Bearer mm-token", "10.0.0.5", "market-maker"),
        ("bearer mm-token", "127.0.0.1", "market-maker"),  # a token wins over loopback
        (None, "127.0.0.1", "sidecar"),
        (None, "::1", "sidecar"),
    ],
)
def test_identify(policies, header, peer, client) -> None:
    assert identify(policies, header, peer).name == client


@pytest.mark.parametrize(
    ("header", "peer"),
    [
        (None, "10.0.0.5"),  # no token, not loopback
        (None, None),
        ("Bearer wrong", "127.0.0.1"),  # a wrong token never falls back to loopback
        ("Basic bW06dG9rZW4=", "127.0.0.1"),
        ("Bearer ", "127.0.0.1"),
    ],
)
def test_unauthenticated(policies, header, peer) -> None:
    with pytest.raises(Unauthenticated):
        identify(policies, header, peer)


HYGIENE = HeaderPolicy(owned_headers())


@pytest.mark.parametrize(
    "name",
    [
        "proxy-authorization",
        "authorization",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "host",
        "content-length",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "x-coinex-key",
        "x-coinex-sign",
        "x-coinex-timestamp",
        "x-coinex-windowtime",
        "icx-api-key",
        "icx-sign",
        "icx-ts",
        "icx-nonce",
        "x-api-key",
        "x-api-sign",
        "x-api-timestamp",
        "x-api-key-invex",
    ],
)
def test_dropped_request_headers(name: str) -> None:
    assert HYGIENE.request_headers([(name, "v"), ("accept", "application/json")]) == (
        ("accept", "application/json"),
    )


def test_connection_named_headers_dropped() -> None:
    headers = [("connection", "close, x-secret-hop"), ("x-secret-hop", "1"), ("content-type", "a/b")]
    assert HYGIENE.request_headers(headers) == (("content-type", "a/b"),)


def test_response_headers_keep_venue_headers() -> None:
    headers = [
        ("content-type", "application/json"),
        ("x-ratelimit-remaining", "9"),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("content-length", "2"),
    ]
    assert response_headers(headers) == [("content-type", "application/json"), ("x-ratelimit-remaining", "9")]


def test_every_uvicorn_server_has_proxy_headers_off() -> None:
    """A new uvicorn server added later must not bring ``X-Forwarded-For`` back (each
    ``uvicorn.Config(...)`` call in the package says ``proxy_headers=False``)."""
    root = Path(proxy.__file__).parent
    calls = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "uvicorn.Config":
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                calls.append((path.name, keywords.get("proxy_headers")))
    assert len(calls) >= 3  # data plane, admin, simulated venues
    assert all(value == "False" for _, value in calls), calls


def test_venue_answer_loses_the_proxys_own_headers() -> None:
    headers = [
        ("x-signing-proxy-error", "policy_denied"),
        ("x-signing-proxy-anything", "1"),
        ("x-signing-proxyless", "kept: not our prefix"),
        ("x-venue", "kept"),
    ]
    assert response_headers(headers) == [("x-signing-proxyless", "kept: not our prefix"), ("x-venue", "kept")]


def test_expect_is_never_forwarded() -> None:
    policy = HeaderPolicy(())
    kept = policy.request_headers([("expect", "100-continue"), ("content-type", "application/json")])
    assert kept == (("content-type", "application/json"),)
