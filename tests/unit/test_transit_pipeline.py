"""Transit-mode accounts through the pipeline, in-process: KV holds only the public fields,
a fake Transit holds the key, and the strict simulated venues must accept the result."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from proxy.credentials.memory import MemoryStore
from proxy.credentials.transit import parse_output, request_for
from proxy.edge import ProxyApp
from proxy.errors import CredentialsUnavailable
from proxy.messages import Credentials
from proxy.signers import SIGNERS
from proxy.signers.base import HmacSigner
from proxy.signers.keyops import Hmac, KeyOp, KeyOperator, RsaPss
from tests.factories import build_pipeline, simulated, venue
from tests.unit.inprocess import proxy_client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
MM = {"Proxy-Authorization": "Bearer mm-token"}
SCHEMES = ("coinex", "icrypex", "haqqex")


class FakeTransit:
    """Holds the HMAC keys the way Transit would; records which key and version signed."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys
        self.calls: list[tuple[str, int | None]] = []
        self.down = False

    def operator(self, venue: str, account: str, key: str, version: int | None) -> KeyOperator:
        async def perform(op: KeyOp) -> bytes:
            self.calls.append((key, version))
            if self.down:
                raise CredentialsUnavailable(venue, account, f"Vault Transit key {key}: unreachable")
            assert isinstance(op, Hmac)
            return hmac.new(self.keys[key], op.message, hashlib.sha256).digest()

        return perform

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _hmac_key(scheme: str, fields: dict[str, str]) -> bytes:
    signer = SIGNERS[scheme]()
    assert isinstance(signer, HmacSigner)
    return signer.hmac_key(Credentials(fields))


@pytest.fixture
def world():
    world = simulated(SCHEMES)
    creds = world.creds
    venues = [venue(s, transit_keys={"main": f"key-{s}"}) for s in SCHEMES]
    transit = FakeTransit({f"key-{s}": _hmac_key(s, creds[s]) for s in SCHEMES})
    # KV holds what `keys put --transit` leaves there: no secret_key.
    store = MemoryStore(
        {(s, "main"): {"api_key": f["api_key"], "transit_key_version": "3"} for s, f in creds.items()}
    )
    pipeline = build_pipeline(FIXTURES / "basic", venues, store, world.upstream, transit=transit)
    return {
        "app": ProxyApp(pipeline, max_body_bytes=1024),
        "transit": transit,
        "store": store,
        "creds": creds,
    }


PATHS = {"coinex": "/v2/assets/spot/balance", "icrypex": "/sapi/v1/wallet", "haqqex": "/api/v1/balances"}


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_transit_signed_requests_are_accepted_without_the_secret_in_kv(world, scheme: str) -> None:
    sidecar = scheme == "haqqex"  # the fixture policy lets only the loopback sidecar reach haqqex
    async with proxy_client(world["app"], "127.0.0.1" if sidecar else "10.1.2.3") as client:
        response = await client.get(f"/{scheme}/main{PATHS[scheme]}", headers={} if sidecar else MM)
    assert response.status_code == 200, response.text
    assert world["transit"].calls == [(f"key-{scheme}", 3)]  # the version KV pins


async def test_transit_unavailable_is_a_503_naming_no_secret(world) -> None:
    world["transit"].down = True
    async with proxy_client(world["app"]) as client:
        response = await client.get("/coinex/main/v2/assets/spot/balance", headers=MM)
    assert response.status_code == 503
    assert response.headers["x-signing-proxy-error"] == "credentials_unavailable"
    assert world["creds"]["coinex"]["secret_key"] not in response.text


async def test_a_missing_public_field_is_a_503(world) -> None:
    world["store"].put("coinex", "main", {"transit_key_version": "1"})
    async with proxy_client(world["app"]) as client:
        response = await client.get("/coinex/main/v2/assets/spot/balance", headers=MM)
    assert response.status_code == 503 and "api_key" in response.json()["error"]["message"]


async def test_a_malformed_pinned_version_is_a_503(world) -> None:
    world["store"].put("coinex", "main", {"api_key": "k", "transit_key_version": "latest"})
    async with proxy_client(world["app"]) as client:
        response = await client.get("/coinex/main/v2/assets/spot/balance", headers=MM)
    assert response.status_code == 503 and "transit_key_version" in response.json()["error"]["message"]
    assert world["transit"].calls == []


def test_transit_request_bodies() -> None:
    assert request_for(Hmac(b"abc"), None) == ("hmac", {"input": "YWJj"})
    endpoint, body = request_for(RsaPss(b"abc"), 2)
    assert endpoint == "sign"
    assert body == {
        "input": "YWJj",
        "key_version": 2,
        "signature_algorithm": "pss",
        "salt_length": "auto",
        "prehashed": False,
    }


@pytest.mark.parametrize("bad", [None, "", "vault:v1", "vault:v1:@@@", "other:v1:YWJj", "vault:1:YWJj"])
def test_transit_output_must_be_a_vault_value(bad: object) -> None:
    from proxy.credentials.transit import TransitError

    with pytest.raises(TransitError):
        parse_output(bad)
    assert parse_output("vault:v12:YWJj") == b"abc"
