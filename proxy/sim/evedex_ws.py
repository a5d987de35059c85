"""Simulated EVEDEX streams: a Centrifugo JSON endpoint that checks private subscriptions.

``wss://ws.evedex.com/connection/websocket`` speaks Centrifugo (``../shared/venues.md``
section 2): JSON commands, several per frame separated by newlines, answered by ``id``.
This sim implements what the proxy relies on:

* ``{"id", "connect": {...}}`` -> ``{"id", "connect": {"client", "version", "ping", "pong"}}``;
  any other command before it gets error 107 ("bad request") and the connection closed 3501.
* ``{"id", "subscribe": {"channel", "data"}}``: a private channel (``<prefix>:<kind>-<user>``
  with a private kind, ``proxy.ws.evedex.PRIVATE_PREFIXES`` written out again here) needs
  ``data.accessToken``: an unexpired access token this sim issued (verified by the REST sim,
  the same JWT check as ``Authorization: Bearer``) **whose wallet is the channel's user**,
  else error 103 ("permission denied"). Accepted, it answers ``subscribe`` and pushes two
  publications on the channel: ``{"push": {"channel", "pub": {"data", "offset"}}}``.
  Public channels need nothing.
* ``{}`` is the client's pong and is ignored; other commands get error 104.

Choices where the venue is undocumented: the channel prefix is ``futures-perp`` (PROD); a
user's ``userExchangeId`` is their wallet address (compared case-insensitively); the error
codes are Centrifugo's own client protocol codes.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from proxy.sim.base import SimSocket

if TYPE_CHECKING:
    from proxy.sim.evedex import EvedexSim

WS_PATH = "/connection/websocket"
CHANNEL_PREFIX = "futures-perp"
PRIVATE_KINDS = ("order-fee-", "transfer-update-", "user-", "order-", "position-", "funding-", "tpsl-")
BAD_REQUEST, PERMISSION_DENIED, METHOD_NOT_FOUND = 107, 103, 104
_MESSAGES = {
    BAD_REQUEST: "bad request",
    PERMISSION_DENIED: "permission denied",
    METHOD_NOT_FOUND: "method not found",
}


def private_user(channel: str) -> str | None:
    """The user id of a private channel of this environment, ``None`` for a public one."""
    prefix, _, name = channel.partition(":")
    kind = next((k for k in PRIVATE_KINDS if name.startswith(k)), None)
    if prefix != CHANNEL_PREFIX or kind is None:
        return None
    return name[len(kind) :]


class EvedexStreams:
    def __init__(self, sim: EvedexSim) -> None:
        self.sim = sim

    async def handle(self, socket: SimSocket) -> None:
        if socket.path != WS_PATH:
            await socket.reject()
            return
        await socket.accept()
        connected = False
        while (data := await socket.receive()) is not None:
            text = data if isinstance(data, str) else data.decode("utf-8", "replace")
            for line in text.split("\n"):
                command = _command(line)
                if command is None:  # "{}": the client's pong
                    continue
                if not connected and "connect" not in command:
                    await socket.send(json.dumps(_error(command.get("id"), BAD_REQUEST)))
                    await socket.close(3501, "bad request")
                    return
                connected = True
                for reply in self.answer(command):
                    await socket.send(json.dumps(reply))

    def answer(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        command_id = command.get("id")
        if "connect" in command:
            client = secrets.token_hex(8)
            return [
                {"id": command_id, "connect": {"client": client, "version": "sim", "ping": 25, "pong": True}}
            ]
        subscribe = command.get("subscribe")
        if not isinstance(subscribe, dict) or not isinstance(subscribe.get("channel"), str):
            return [_error(command_id, METHOD_NOT_FOUND)]
        channel = subscribe["channel"]
        user = private_user(channel)
        if user is None:
            return [{"id": command_id, "subscribe": {}}]
        data = subscribe.get("data")
        token = data.get("accessToken") if isinstance(data, dict) else None
        wallet = self.sim.access_token_wallet(token) if isinstance(token, str) else None
        if wallet is None or wallet.lower() != user.lower():
            return [_error(command_id, PERMISSION_DENIED)]
        reply = {"id": command_id, "subscribe": {"recoverable": True, "epoch": "sim", "offset": 2}}
        return [reply, *self.publications(channel, wallet)]

    def publications(self, channel: str, wallet: str) -> list[dict[str, Any]]:
        mine = [o for o in self.sim.orders.values() if o["wallet"] == wallet][-2:]
        events = mine or [
            {"id": f"00001:{secrets.token_hex(13)}", "instrument": "BTCUSDT", "side": "BUY", "status": "NEW"}
            for _ in range(2)
        ]
        return [
            {"push": {"channel": channel, "pub": {"data": event, "offset": offset}}}
            for offset, event in enumerate(events, start=1)
        ]


def _command(line: str) -> dict[str, Any] | None:
    """One command; ``None`` for ``{}`` (a pong); an unreadable line is an id-less command."""
    try:
        command = json.loads(line)
    except ValueError:
        return {"id": None}
    if not isinstance(command, dict):
        return {"id": None}
    return command or None


def _error(command_id: Any, code: int) -> dict[str, Any]:
    return {"id": command_id, "error": {"code": code, "message": _MESSAGES[code]}}
