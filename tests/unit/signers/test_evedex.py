"""EVEDEX pure signing: SIWE and EIP-712 pinned to ``vectors/evedex.json``, normalisation, refusals.

Expected values come from the vectors (ethers 6 / @evedex/exchange-crypto / eth-account
oracles) or are written by hand from Big.js semantics, never from the code under test.
"""

from __future__ import annotations

import base64
import json
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from pydantic import ValidationError

from proxy.errors import BadRequest, CredentialsUnavailable, SigningFailed
from proxy.hygiene import HeaderPolicy
from proxy.messages import Credentials, OutgoingRequest
from proxy.signers import owned_headers
from proxy.signers.base import SignContext
from proxy.signers.evedex import orders
from proxy.signers.evedex.session import (
    iso_ms,
    jwt_expiry,
    load_wallet,
    personal_sign,
    read_session,
    sign_up_body,
    siwe_message,
)
from proxy.signers.evedex.signer import EvedexSigner, match_route, sign_order_body
from tests import vectors

DATA = vectors.load("evedex")
SIWE = vectors.vector("evedex", "siwe_login")
KEY: str = SIWE["inputs"]["private_key"]
ADDRESS: str = SIWE["inputs"]["address"]
CHAIN = int(SIWE["inputs"]["chain_id"])
EIP712 = [v for v in DATA["vectors"] if v["name"].startswith("eip712_")]
LIMIT = vectors.vector("evedex", "eip712_limit")
REPLACE = vectors.vector("evedex", "eip712_replace_limit")
CLOSE = vectors.vector("evedex", "eip712_position_close")
CTX = SignContext("evedex", "main", 1_700_000_000_000)
ORDER_ID = "00123:0123456789abcdef0123456789"


def _endpoint(vector: dict[str, Any]) -> tuple[str, str]:
    """``("POST", "/api/v2/position/BTCUSDT/close")`` from the vector's ``endpoint`` text."""
    method, template = vector["endpoint"].split()[:2]
    return method, template.format(**vector["inputs"]["order"])


def _request(method: str, path: str, body: Any, *headers: tuple[str, str]) -> OutgoingRequest:
    return OutgoingRequest(method, path, headers, json.dumps(body).encode())


def _compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _sign(method: str, path: str, body: Any) -> Any:
    """The forwarded body, decoded."""
    signed = sign_order_body(_request(method, path, body), load_wallet(KEY).signing_key, CHAIN)
    return json.loads(signed.body)


def _bad_request(method: str, path: str, body: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        sign_order_body(OutgoingRequest(method, path, (), body), load_wallet(KEY).signing_key, CHAIN)
    return caught.value.message


# --- SIWE login (vector siwe_login) -------------------------------------------------------


def test_siwe_message_matches_vector_byte_for_byte() -> None:
    message = siwe_message(
        domain="evedex.com",
        address=ADDRESS,
        statement="Sign in to evedex.com",
        uri="https://evedex.com",
        chain_id=CHAIN,
        nonce=SIWE["inputs"]["nonce"],
        issued_at=iso_ms(1_700_000_000_000),
    )
    assert message == SIWE["message"]


@pytest.mark.parametrize(
    ("now_ms", "expected"),
    [
        (1_700_000_000_000, "2023-11-14T22:13:20.000Z"),  # the vector's issued_at
        (1_700_000_000_007, "2023-11-14T22:13:20.007Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_999, "2000-02-29T00:00:00.999Z"),
    ],
)
def test_iso_ms_writes_milliseconds_and_z(now_ms: int, expected: str) -> None:
    assert iso_ms(now_ms) == expected


def test_personal_sign_matches_vector() -> None:
    wallet = load_wallet(KEY)
    assert wallet.address == ADDRESS
    assert personal_sign(wallet.account, SIWE["message"]) == SIWE["personal_sign_signature"]


def test_sign_up_body_matches_vector() -> None:
    expected = SIWE["sign_up_request"]["json"]
    body = sign_up_body(ADDRESS, SIWE["message"], SIWE["inputs"]["nonce"], SIWE["personal_sign_signature"])
    assert json.loads(body) == expected
    assert list(json.loads(body)) == ["wallet", "message", "nonce", "signature"]


# --- EIP-712 orders (vectors eip712_*) ----------------------------------------------------


@pytest.mark.parametrize("vector", EIP712, ids=lambda v: v["name"])
def test_order_body_matches_sdk_byte_for_byte(vector: dict[str, Any]) -> None:
    method, path = _endpoint(vector)
    signed = sign_order_body(
        _request(method, path, vector["inputs"]["order"]), load_wallet(KEY).signing_key, CHAIN
    )
    assert signed.body == _compact(vector["request_body_fields_from_sdk"])
    assert json.loads(signed.body)["signature"] == vector["signature"]


@pytest.mark.parametrize("vector", EIP712, ids=lambda v: v["name"])
def test_typed_data_message_and_digest_match_vector(vector: dict[str, Any]) -> None:
    method, path = _endpoint(vector)
    found = match_route(method, path)
    assert found is not None
    route, path_values = found
    assert route.order_type.primary_type == vector["eip712"]["primaryType"]
    message, _ = orders.build_payload(route.order_type, vector["inputs"]["order"], path_values, CHAIN)
    assert message == vector["eip712"]["message"]
    # Oracle: eth-account's generic EIP-712 encoder over the vector's own typed data.
    domain = vector["eip712"]["domain"] | {"chainId": CHAIN}
    oracle = encode_typed_data(domain, vector["eip712"]["types"], vector["eip712"]["message"])
    assert orders.typed_data_digest(route.order_type, message, CHAIN) == keccak(
        b"\x19" + oracle.version + oracle.header + oracle.body
    )
    assert Account.recover_message(oracle, signature=vector["signature"]) == ADDRESS


def test_client_signature_and_chain_id_are_replaced() -> None:
    forged = LIMIT["inputs"]["order"] | {"chainId": "1", "signature": "0x" + "ab" * 65}
    assert _sign("POST", "/api/v2/order/limit", forged) == LIMIT["request_body_fields_from_sdk"]


def test_chain_id_option_is_what_gets_signed() -> None:
    other = 16182  # not the vector's chain id (161803)
    body = sign_order_body(
        _request("POST", "/api/v2/order/limit", LIMIT["inputs"]["order"]), load_wallet(KEY).signing_key, other
    )
    signed = json.loads(body.body)
    assert signed["chainId"] == str(other)
    # Oracle: eth-account over the vector's typed data with the other chain id, in the domain
    # and in the message. The wallet signed exactly that...
    typed = LIMIT["eip712"]
    message = typed["message"] | {"chainId": other}
    under_other = encode_typed_data(typed["domain"] | {"chainId": other}, typed["types"], message)
    assert Account.recover_message(under_other, signature=signed["signature"]) == ADDRESS
    # ...and not the vector's chain: there the same signature names someone else.
    under_vector = encode_typed_data(typed["domain"], typed["types"], typed["message"])
    assert Account.recover_message(under_vector, signature=signed["signature"]) != ADDRESS


def test_unsigned_client_fields_pass_through_before_chain_id() -> None:
    order = LIMIT["inputs"]["order"] | {"tpsl": None, "timeInForce": "GTC", "note": "é"}
    signed = sign_order_body(
        _request("POST", "/api/v2/order/limit", order), load_wallet(KEY).signing_key, CHAIN
    )
    body = json.loads(signed.body)
    assert list(body) == [
        *["id", "instrument", "side", "leverage", "quantity", "limitPrice"],
        *["tpsl", "timeInForce", "note", "chainId", "signature"],
    ]
    assert body["signature"] == LIMIT["signature"]  # unsigned, as in the SDK
    assert "é".encode() in signed.body  # JSON.stringify does not escape non-ASCII


def test_client_number_text_survives_in_unsigned_fields() -> None:
    raw = b'{"instrument":"BTCUSDT","type":"take-profit","side":"SELL","quantity":0.001,"price":70000,'
    raw += b'"order":null,"extra":[1.50,2e3]}'
    signed = sign_order_body(
        OutgoingRequest("POST", "/api/tpsl/BTCUSDT", (), raw), load_wallet(KEY).signing_key, CHAIN
    )
    assert b'"extra":[1.50,2E+3]' in signed.body
    assert json.loads(signed.body)["quantity"] == "0.001"  # JSON numbers are read exactly
    assert json.loads(signed.body)["signature"] == vectors.vector("evedex", "eip712_tpsl")["signature"]


def test_replace_takes_order_id_from_the_path() -> None:
    order = {k: v for k, v in REPLACE["inputs"]["order"].items() if k != "orderId"}
    path = "/api/order/00123%3A0123456789abcdef0123456789/limit"  # ":" percent-encoded by the client
    body = _sign("PUT", path, order)
    expected = {k: v for k, v in REPLACE["request_body_fields_from_sdk"].items() if k != "orderId"}
    assert body == expected  # the exchange-api gateway's shape: orderId only in the path


def test_position_close_takes_instrument_from_the_path() -> None:
    order = {k: v for k, v in CLOSE["inputs"]["order"].items() if k != "instrument"}
    body = _sign("POST", "/api/v2/position/BTCUSDT/close", order)
    assert "instrument" not in body
    assert body["signature"] == CLOSE["signature"]


def test_mass_limit_signs_each_order_as_a_limit_order() -> None:
    second = LIMIT["inputs"]["order"] | {"id": "00123:ffffffffffffffffffffffffff", "side": "SELL"}
    body = _sign("POST", "/api/v2/order/mass-limit/BTCUSDT", [LIMIT["inputs"]["order"], second])
    assert body[0] == LIMIT["request_body_fields_from_sdk"]
    typed = LIMIT["eip712"] | {"message": LIMIT["eip712"]["message"] | {"id": second["id"], "side": "SELL"}}
    typed["domain"] = typed["domain"] | {"chainId": CHAIN}
    signable = encode_typed_data(typed["domain"], typed["types"], typed["message"])
    assert Account.recover_message(signable, signature=body[1]["signature"]) == ADDRESS


def test_content_type_is_added_only_when_missing() -> None:
    key = load_wallet(KEY).signing_key
    bare = sign_order_body(_request("POST", "/api/v2/order/limit", LIMIT["inputs"]["order"]), key, CHAIN)
    assert bare.header("content-type") == "application/json"
    typed = _request("POST", "/api/v2/order/limit", LIMIT["inputs"]["order"], ("content-type", "text/json"))
    assert sign_order_body(typed, key, CHAIN).headers == (("content-type", "text/json"),)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/order/opened"),
        ("GET", "/api/v2/order/limit"),
        ("DELETE", "/api/order/00123:0123456789abcdef0123456789"),
        ("POST", "/api/order/mass-cancel"),
        ("POST", "/api/order/limit"),  # v1: not mapped (module docstring)
        ("POST", "/api/v2/order/limit/extra"),
        ("PUT", "/api/order/limit/BTCUSDT"),
    ],
)
def test_other_requests_are_not_touched(method: str, path: str) -> None:
    request = OutgoingRequest(method, path, (), b'{"signature":"client","chainId":"1"}')
    assert sign_order_body(request, load_wallet(KEY).signing_key, CHAIN) is request


# --- number normalisation (exchange-crypto toMatcherNumber / toEthNumber) ------------------


@pytest.mark.parametrize(
    ("value", "matcher", "eth"),
    [
        ("59999.123456785", "59999.12345679", 5999912345679),  # vector stop_limit: half-up at 8 dp
        ("12.3456789012", "12.3456789", 1234567890),  # vector withdraw
        ("0.001", "0.001", 100000),
        ("65000.5", "65000.5", 6500050000000),
        ("60000", "60000", 6000000000000),
        ("100.000", "100", 10000000000),  # no trailing zeros
        (100, "100", 10000000000),  # JSON integer
        (Decimal("0.10"), "0.1", 10000000),  # JSON number parsed as Decimal
        ("1e3", "1000", 100000000000),  # big.js accepts exponents ...
        ("1.5E-3", "0.0015", 150000),
        ("0.00000001", "0.00000001", 1),  # ... but never writes one (Big.js would: "1e-8")
        ("0.000000005", "0.00000001", 1),
        ("0.000000004999", "0", 0),
        (".5", "0.5", 50000000),
        ("5.", "5", 500000000),
        ("0", "0", 0),
        ("123456789012345678901.123456785", "123456789012345678901.12345679", 12345678901234567890112345679),
    ],
)
def test_matcher_and_eth_numbers(value: Any, matcher: str, eth: int) -> None:
    assert orders.to_matcher_number(value) == matcher
    assert orders.to_eth_number(value) == eth


def test_withdraw_amount_rounds_down() -> None:
    assert orders.to_matcher_number("1.000000019", rounding=ROUND_DOWN) == "1.00000001"
    body = _sign(
        "POST", "/api/transfer/pf/withdraw", {"recipient": "0x" + "00" * 20, "amount": "1.999999999"}
    )
    assert body["amount"] == "1.99999999"


# --- refusals name the field ---------------------------------------------------------------

_LIMIT_ORDER: dict[str, Any] = LIMIT["inputs"]["order"]
_WITHDRAW = "/api/transfer/pf/withdraw"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/api/v2/order/limit", {k: v for k, v in _LIMIT_ORDER.items() if k != "quantity"},
         "'quantity' is missing"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"limitPrice": None}, "'limitPrice' is missing"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": "abc"}, "'quantity' must be a decimal"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": "NaN"}, "'quantity' must be a decimal"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": " 1"}, "'quantity' must be a decimal"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": True}, "'quantity' must be a decimal"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": "-1"}, "'quantity' must not be negative"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": "-0"}, "'quantity' must not be negative"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"limitPrice": "12089258196146292"},
         "'limitPrice' is too large for uint80"),  # 2**80 / 1e8 = 12089258.19614629174706176e9
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"quantity": "1e999999"}, "'quantity' is too large"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"leverage": 256}, "'leverage' must be an integer"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"leverage": "5"}, "'leverage' must be an integer"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"leverage": 5.0}, "'leverage' must be an integer"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"side": 1}, "'side' must be a non-empty string"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"id": ""}, "'id' must be a non-empty string"),
        ("POST", "/api/v2/order/limit", _LIMIT_ORDER | {"postOnly": "no"}, "'postOnly' must be a boolean"),
        ("POST", "/api/v2/order/limit", [_LIMIT_ORDER], "body must be a JSON object"),
        ("POST", _WITHDRAW, {"recipient": "0xdead", "amount": "1"}, "'recipient' must be a 0x-prefixed"),
        ("POST", _WITHDRAW, {"recipient": "0x000000000000000000000000000000000000DeaD", "amount": "1"},
         "'recipient' must be a 0x-prefixed"),  # mixed case with a wrong EIP-55 checksum
        ("POST", "/api/v2/order/mass-limit/BTCUSDT", [_LIMIT_ORDER] * 21, "array of 1 to 20 orders"),
        ("POST", "/api/v2/order/mass-limit/BTCUSDT", [], "array of 1 to 20 orders"),
        ("POST", "/api/v2/order/mass-limit/BTCUSDT", _LIMIT_ORDER, "array of 1 to 20 orders"),
        ("POST", "/api/v2/order/mass-limit/BTCUSDT", [_LIMIT_ORDER, _LIMIT_ORDER | {"quantity": "x"}],
         "'orders[1].quantity' must be a decimal"),
        ("POST", "/api/v2/order/mass-limit/BTCUSDT", [_LIMIT_ORDER, 7], "orders[1] must be a JSON object"),
        ("POST", "/api/v2/order/mass-limit/ETHUSDT", [_LIMIT_ORDER],
         "'orders[0].instrument' does not match the request path"),
        ("PUT", "/api/order/other/limit", REPLACE["inputs"]["order"], "'orderId' does not match the request"),
        ("POST", "/api/v2/position/ETHUSDT/close", CLOSE["inputs"]["order"], "'instrument' does not match"),
    ],
)  # fmt: skip
def test_unsignable_bodies_are_refused_naming_the_field(
    method: str, path: str, body: Any, expected: str
) -> None:
    assert expected in _bad_request(method, path, json.dumps(body).encode())


@pytest.mark.parametrize("raw", [b"", b"{", b'{"quantity": NaN}', b"\xff", b"[" * 500])
def test_unparsable_bodies_are_refused(raw: bytes) -> None:
    assert _bad_request("POST", "/api/v2/order/limit", raw) == "evedex: body is not valid JSON"


def test_deep_nesting_is_refused_before_parsing() -> None:
    # With eth-account imported the recursion limit is 100000: parsing this would crash.
    message = _bad_request("POST", "/api/v2/order/limit", b"[" * 1_000_000)
    assert message == "evedex: body has more than 512 JSON objects and arrays"


# --- the signer outside the flow, options, keys --------------------------------------------


def _creds(**fields: str) -> Credentials:
    return Credentials({"wallet_private_key": KEY} | fields)


def test_api_key_mode_adds_only_the_api_key_to_other_requests() -> None:
    signer = EvedexSigner({"mode": "api_key"})
    request = OutgoingRequest("GET", "/api/order/opened", (("x-api-key", "client"), ("authorization", "x")))
    signed = signer.sign(request, _creds(api_key="k-1"), CTX)
    assert signed.headers == (("x-api-key", "k-1"),)
    assert signed.body == b""


def test_api_key_mode_signs_orders_with_the_wallet() -> None:
    signer = EvedexSigner({"mode": "api_key"})
    request = _request("POST", "/api/v2/order/limit", LIMIT["inputs"]["order"])
    signed = signer.sign(request, _creds(api_key="k-1"), CTX)
    assert signed.body == _compact(LIMIT["request_body_fields_from_sdk"])
    assert signed.header("x-api-key") == "k-1"


def test_api_key_mode_requires_the_api_key() -> None:
    with pytest.raises(CredentialsUnavailable, match="api_key"):
        EvedexSigner({"mode": "api_key"}).sign(OutgoingRequest("GET", "/api/user/me"), _creds(), CTX)


def test_jwt_mode_cannot_sign_without_the_flow() -> None:
    signer = EvedexSigner({"auth_upstream": "https://auth-api.evedex.com"})
    with pytest.raises(SigningFailed, match="flow"):
        signer.sign(OutgoingRequest("GET", "/api/user/me"), _creds(), CTX)


def test_client_cannot_send_the_headers_evedex_authenticates_with() -> None:
    # Replaces a test that restated the class constants: what they are for is that a client's
    # own Authorization / X-API-Key never reaches the venue beside (or instead of) ours.
    sent = (("authorization", "Bearer someone-else"), ("x-api-key", "theirs"), ("accept", "application/json"))
    assert HeaderPolicy(owned_headers()).request_headers(sent) == (("accept", "application/json"),)


def test_options_defaults_and_origin_normalisation() -> None:
    opts = EvedexSigner({"auth_upstream": "https://auth-api.evedex.com/"}).opts
    assert (opts.mode, opts.chain_id, opts.auth_upstream) == ("jwt", 161803, "https://auth-api.evedex.com")
    assert (opts.siwe_domain, opts.siwe_uri, opts.siwe_statement) == (
        "evedex.com",
        "https://evedex.com",
        "Sign in to evedex.com",
    )
    assert opts.refresh_leeway_s == 30
    assert EvedexSigner({"mode": "api_key"}).opts.auth_upstream is None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "auth_upstream is required in jwt mode"),
        ({"auth_upstream": "https://auth-api.evedex.com/auth"}, "must be an origin"),
        ({"auth_upstream": "auth-api.evedex.com"}, "must be an origin"),
        ({"auth_upstream": "https://a.example?x=1"}, "must be an origin"),
        ({"mode": "api_key", "chain_id": 0}, "chain_id"),
        ({"mode": "oauth"}, "mode"),
        ({"mode": "api_key", "chainid": 1}, "chainid"),
    ],
)
def test_bad_options_are_refused_naming_the_field(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        EvedexSigner(options)


def test_wallet_is_parsed_once_per_key_and_hides_it() -> None:
    assert load_wallet(KEY) is load_wallet(KEY)
    assert KEY[2:] not in repr(load_wallet(KEY))
    assert repr(load_wallet(KEY)) == f"<Wallet {ADDRESS}>"


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 32, "00" * 32, ""])
def test_bad_wallet_key_fails_without_quoting_it(bad: str) -> None:
    with pytest.raises(SigningFailed) as caught:
        load_wallet(bad)
    assert caught.value.message == "evedex: wallet_private_key is not a 32-byte hex secp256k1 key"
    assert caught.value.__context__ is None


# --- session answers -----------------------------------------------------------------------

NOW_MS = 1_700_000_000_000


def _jwt(claims: str) -> str:
    """An unsigned JWT-shaped token with the given claims JSON (signature irrelevant here)."""
    return "eyJhbGciOiJIUzI1NiJ9." + base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=") + ".c2ln"


def test_read_session_takes_tokens_and_rebases_expiry_on_receipt() -> None:
    # The venue's clock is 1000 s ahead of ours: exp - iat = 300 s still counts from receipt.
    access = _jwt('{"iat":1700001000,"exp":1700001300}')
    body = json.dumps({"user": {}, "token": {"accessToken": access, "refreshToken": "opaque"}})
    tokens = read_session(body.encode(), NOW_MS)
    assert tokens is not None
    assert (tokens.access, tokens.refresh) == (access, "opaque")
    assert (tokens.access_expires_ms, tokens.access_lifetime_ms) == (NOW_MS + 300_000, 300_000)
    assert tokens.refresh_expires_ms is None
    assert access not in repr(tokens) and "opaque" not in str(tokens)


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ('{"exp":1700000300}', (1_700_000_300_000, None)),  # no iat: exp as is
        ('{"exp":1700000300.5,"iat":1700000000}', (NOW_MS + 300_500, 300_500)),
        ('{"exp":1700000300,"iat":1700000400}', (1_700_000_300_000, None)),  # iat after exp: ignored
        ('{"exp":"soon"}', (None, None)),
        ('{"exp":true}', (None, None)),
        ('{"exp":Infinity}', (None, None)),
        ("null", (None, None)),
    ],
)
def test_jwt_expiry(claims: str, expected: tuple[int | None, int | None]) -> None:
    assert jwt_expiry(_jwt(claims), NOW_MS) == expected


@pytest.mark.parametrize("token", ["opaque", "a.b", "a.!!!.c", "a.b.c.d"])
def test_jwt_expiry_of_unreadable_tokens_is_unknown(token: str) -> None:
    assert jwt_expiry(token, NOW_MS) == (None, None)


@pytest.mark.parametrize(
    ("lifetime_s", "leeway_s", "due_after_s"),
    [(300, 30, 270), (40, 30, 20), (20, 30, 10)],  # the leeway never exceeds half the lifetime
)
def test_access_token_is_due_within_the_leeway(lifetime_s: int, leeway_s: int, due_after_s: int) -> None:
    access = _jwt(f'{{"iat":1,"exp":{1 + lifetime_s}}}')
    body = json.dumps({"token": {"accessToken": access, "refreshToken": "r"}}).encode()
    tokens = read_session(body, NOW_MS)
    assert tokens is not None
    assert not tokens.access_due(NOW_MS + due_after_s * 1000 - 1, leeway_s * 1000)
    assert tokens.access_due(NOW_MS + due_after_s * 1000, leeway_s * 1000)


def test_opaque_tokens_are_never_due() -> None:
    tokens = read_session(b'{"token": {"accessToken": "a", "refreshToken": "r"}}', NOW_MS)
    assert tokens is not None
    assert not tokens.access_due(NOW_MS * 2, 30_000) and not tokens.refresh_expired(NOW_MS * 2)


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"token": null}', b'{"token": {"accessToken": "a"}}', b'{"token": {"accessToken": 1, '
     b'"refreshToken": "r"}}', b'{"accessToken": "a", "refreshToken": "r"}'],
)  # fmt: skip
def test_read_session_refuses_garbled_answers(body: bytes) -> None:
    assert read_session(body, NOW_MS) is None
