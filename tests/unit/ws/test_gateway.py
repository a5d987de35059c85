"""Streams through the whole ASGI edge in-process: admission, login, relay, limits, closes."""

from __future__ import annotations

import gzip
import json

import pytest
from eth_account import Account

from proxy.ws.frames import Closed, Frame
from tests.unit.ws.conftest import POSTER, STREAMER, World
from tests.unit.ws.harness import AsgiClient

ORDER_SUBSCRIBE = json.dumps({"method": "order.subscribe", "params": {"market_list": ["BTCUSDT"]}, "id": 5})


def gunzip(frame: Frame | Closed) -> dict:
    assert isinstance(frame, Frame) and isinstance(frame.data, bytes), frame
    return json.loads(gzip.decompress(frame.data))


async def accepted(client: AsgiClient) -> None:
    message = await client.handshake()
    assert message["type"] == "websocket.accept", message


def evedex_channel(world: World, kind: str = "order") -> str:
    address = Account.from_key(world.creds["evedex"]["wallet_private_key"]).address
    return f"futures-perp:{kind}-{address}"


# --- each venue's login, verified by the simulated venue --------------------------------


async def test_coinex_stream_signs_in_and_relays_private_events(world: World) -> None:
    client = world.connect("/coinex/main/v2/spot")
    await accepted(client)
    client.send(ORDER_SUBSCRIBE)
    assert gunzip(await client.receive()) == {"id": 5, "code": 0, "message": "OK"}
    events = [gunzip(await client.receive()) for _ in range(2)]
    assert [e["method"] for e in events] == ["order.update", "order.update"]
    login = json.loads(world.sims["coinex"].recorder.frames[0].data)
    assert login["method"] == "server.sign"
    assert login["params"]["access_id"] == world.creds["coinex"]["api_key"]
    client.disconnect()
    await client.finished()


async def test_icrypex_stream_logs_in_and_relays_private_events(world: World) -> None:
    client = world.connect("/icrypex/main/")
    await accepted(client)
    client.send('subscribe|{"c":"order","s":true}')
    assert await client.receive() == Frame('subscribe-response|{"c":"order","s":true}')
    event = await client.receive()
    assert isinstance(event.data, str) and event.data.startswith("order|")
    login = world.sims["icrypex"].recorder.frames[0].text()
    assert login.startswith('api-login|{"pk":"' + world.creds["icrypex"]["api_key"])
    client.disconnect()
    await client.finished()


async def test_evedex_private_subscription_carries_the_session_token(world: World) -> None:
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    channel = evedex_channel(world)
    client.send(
        json.dumps({"id": 1, "connect": {}}) + "\n" + json.dumps({"id": 2, "subscribe": {"channel": channel}})
    )
    assert "connect" in json.loads((await client.receive()).data)
    assert json.loads((await client.receive()).data)["subscribe"]["recoverable"] is True
    push = json.loads((await client.receive()).data)["push"]
    assert push["channel"] == channel
    client.disconnect()
    await client.finished()


async def test_evedex_public_channels_get_no_token_and_pass_byte_for_byte(world: World) -> None:
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    public = '{"id": 2, "subscribe": {"channel": "futures-perp:trade-BTCUSDT"}}'
    frame = '{"id": 1, "connect": {"name": "js"}}\n' + public
    client.send(frame)
    await client.receive()
    assert json.loads((await client.receive()).data) == {"id": 2, "subscribe": {}}
    assert world.sims["evedex"].recorder.frames[0].data == frame
    assert world.sims["evedex"].logins == 0  # no token was needed, so no SIWE login either
    client.disconnect()
    await client.finished()


# --- the client's own login never reaches the venue ---------------------------------------


async def test_forged_coinex_login_is_dropped_and_answered(world: World) -> None:
    client = world.connect("/coinex/main/v2/spot")
    await accepted(client)
    forged = {
        "method": "server.sign",
        "params": {"access_id": "FORGED", "signed_str": "0" * 64, "timestamp": 1},
    }
    client.send(json.dumps({**forged, "id": 9}))
    client.send(
        '{"method": "server.sign", "id": 10, "method": "order.subscribe"}'
    )  # duplicate key: still a login
    assert gunzip(await client.receive()) == {"id": 9, "code": 0, "message": "OK"}
    assert gunzip(await client.receive())["id"] == 10
    client.send(ORDER_SUBSCRIBE)
    assert gunzip(await client.receive())["code"] == 0  # the proxy's own login stands
    seen = [f.text() for f in world.sims["coinex"].recorder.frames]
    assert len(seen) == 2 and "FORGED" not in "".join(seen)
    client.disconnect()
    await client.finished()


async def test_forged_icrypex_login_is_dropped_and_answered(world: World) -> None:
    client = world.connect("/icrypex/main/")
    await accepted(client)
    for forged in (
        'api-login|{"pk":"FORGED","s":"x","ts":1,"n":1}',
        ' API-LOGIN |{"pk":"FORGED"}',
        b"api-login|{}",
    ):
        client.send(forged)
        assert await client.receive() == Frame('api-auth|{"v":true}')
    seen = [f.text() for f in world.sims["icrypex"].recorder.frames]
    assert len(seen) == 1 and "FORGED" not in seen[0]  # only the proxy's login arrived
    client.disconnect()
    await client.finished()


async def test_client_access_tokens_are_replaced_or_stripped(world: World) -> None:
    client = world.connect("/evedex/main/connection/websocket")
    await accepted(client)
    private = {
        "channel": evedex_channel(world),
        "data": {"accessToken": "FORGED", "keep": 1},
        "token": "FORGED",
    }
    public = {"channel": "futures-perp:trade-BTCUSDT", "data": {"accessToken": "FORGED"}}
    client.send(json.dumps({"id": 1, "connect": {"token": "FORGED"}}))
    client.send(json.dumps({"id": 2, "subscribe": private}))
    client.send(json.dumps({"id": 3, "subscribe": public}))
    replies = [json.loads((await client.receive()).data) for _ in range(5)]
    assert [r.get("id") for r in replies] == [1, 2, None, None, 3]
    seen = "".join(f.text() for f in world.sims["evedex"].recorder.frames)
    assert "FORGED" not in seen and '"keep":1' in seen
    client.disconnect()
    await client.finished()


# --- refusals before the upgrade: the error contract ------------------------------------


@pytest.mark.parametrize(
    ("path", "token", "status", "code"),
    [
        ("/coinex/main/v2/spot", None, 401, "unauthenticated"),
        ("/nowhere/main/v2/spot", None, 401, "unauthenticated"),  # identity first: no probing
        ("/nowhere/main/v2/spot", "streamer-token", 404, "unknown_route"),
        ("/coinex/other/v2/spot", "streamer-token", 404, "unknown_route"),
        ("/haqqex/main/ws", "streamer-token", 404, "unknown_route"),  # no ws_upstream
        ("/coinex/main/v2/futures", "streamer-token", 403, "policy_denied"),  # deny rule
        ("/coinex/main/v2/spot", POSTER, 403, "policy_denied"),  # allowed POST only: no GET, no stream
        ("/coinex/main/v2/%2e%2e/spot", "streamer-token", 400, "bad_request"),
        ("/coinex/absent/v2/spot", "streamer-token", 503, "credentials_unavailable"),
        ("/dead/main/v2/spot", "streamer-token", 502, "upstream_unreachable"),
    ],
)
async def test_refused_before_the_upgrade_with_the_error_contract(
    world: World, path: str, token: str | None, status: int, code: str
) -> None:
    client = world.connect(path, token)
    response = await client.handshake()
    assert response["type"] == "websocket.http.response.start"
    headers = {k.decode(): v.decode() for k, v in response["headers"]}
    body = json.loads(response["body"])
    assert (response["status"], headers["x-signing-proxy-error"], body["error"]["code"]) == (
        status,
        code,
        code,
    )
    assert body["error"]["request_id"] == headers["x-request-id"]
    await client.finished()
    assert not world.connector.opened  # nothing reached a venue
    assert world.gateway.limits.open_streams() == 0


async def test_without_the_response_extension_the_refusal_is_close_1008_with_the_code(world: World) -> None:
    client = world.connect("/coinex/main/v2/futures", extension=False)
    assert await client.handshake() == {"type": "websocket.close", "code": 1008, "reason": "policy_denied"}
    client.disconnect(1006)
    await client.finished()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/coinex/main/v2/spot?_method=POST", []),
        ("/coinex/main/v2/spot", [("X-HTTP-Method-Override", "POST")]),
    ],
)
async def test_a_stream_open_asking_for_another_method_is_refused_as_on_rest(
    world: World, path: str, headers: list[tuple[str, str]]
) -> None:
    # The REST steps themselves decide a stream (Pipeline.authorize): a method override is a
    # 400 there, so it is one here too, before anything reaches the venue.
    client = AsgiClient(world.app, path, [("Proxy-Authorization", f"Bearer {STREAMER}"), *headers])
    response = await client.handshake()
    assert response["type"] == "websocket.http.response.start"
    assert response["status"] == 400
    assert json.loads(response["body"])["error"]["code"] == "bad_request"
    await client.finished()
    assert not world.connector.opened


# --- login failure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        ("/coinex/wrong/v2/spot", 4001, "login_failed: the venue answered server.sign with code 21002"),
        ("/icrypex/wrong/", 4001, 'login_failed: the venue answered api-login with api-auth "v" not true'),
    ],
)
async def test_a_refused_login_closes_the_client_with_4001(
    world: World, path: str, code: int, reason: str
) -> None:
    client = world.connect(path)
    await accepted(client)
    assert await client.receive() == Closed(code, reason)
    await client.finished()
    assert world.connector.opened[0].closed_with == Closed(1000)
    assert world.gateway.limits.open_streams() == 0


async def test_an_evedex_token_that_cannot_be_had_closes_with_4503(world: World) -> None:
    client = world.connect("/evedex/wrong/connection/websocket")
    await accepted(client)
    client.send(json.dumps({"id": 1, "subscribe": {"channel": evedex_channel(world)}}))
    closed = await client.receive()
    assert isinstance(closed, Closed) and closed.code == 4503
    assert closed.reason.startswith("credentials_unavailable: credentials for evedex/wrong unavailable")
    await client.finished()
    assert world.sims["evedex"].recorder.frames == []  # the subscribe never went up without a token


# --- nothing secret in the logs ------------------------------------------------------------


async def test_stream_logs_name_the_stream_and_hold_no_secret(world: World, captured_logs) -> None:
    client = world.connect("/coinex/main/v2/spot")
    await accepted(client)
    client.send(ORDER_SUBSCRIBE)
    await client.receive()
    client.disconnect(1000)
    await client.finished()
    evedex = world.connect("/evedex/main/connection/websocket")
    await accepted(evedex)
    evedex.send(json.dumps({"id": 1, "connect": {}}))
    evedex.send(json.dumps({"id": 2, "subscribe": {"channel": evedex_channel(world)}}))
    for _ in range(2):
        await evedex.receive()
    evedex.disconnect()
    await evedex.finished()
    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if '"msg": "stream"' in line]
    assert {(line["venue"], line["status"], line["ended_by"]) for line in lines} == {
        ("coinex", 101, "client"),
        ("evedex", 101, "client"),
    }
    token = json.loads(world.sims["evedex"].recorder.frames[1].data)["subscribe"]["data"]["accessToken"]
    login = json.loads(world.sims["coinex"].recorder.frames[0].data)["params"]["signed_str"]
    for secret in (
        world.creds["coinex"]["secret_key"],
        world.creds["evedex"]["wallet_private_key"],
        token,
        login,
    ):
        assert secret not in text
