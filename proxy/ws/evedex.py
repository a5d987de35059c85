"""EVEDEX streams: the access token goes into private channel subscriptions.

EVEDEX streams are Centrifugo (``../shared/venues.md`` section 2; ``exchange-bot-sdk``
``src/utils/ws.ts``): JSON commands such as ``{"id":1,"connect":{}}`` and
``{"id":2,"subscribe":{"channel":"futures-perp:order-<userExchangeId>","data":{...}}}``;
a frame may carry several commands separated by newlines. Private channels (``user-``,
``order-``, ``position-``, ``funding-``, ``tpsl-``, ``order-fee-``, ``transfer-update-``
after the environment prefix) are subscribed with ``data: {"accessToken": <JWT>}``.

So there is no login at connect: the proxy rewrites each client command on its way up.

* In every command, client credentials are removed: ``token`` of ``connect``,
  ``subscribe``, ``refresh`` and ``sub_refresh``, and ``accessToken`` in their ``data``.
* A ``subscribe`` to a private channel gets ``data.accessToken`` = the account's current
  access token from ``EvedexSigner.access_token``: the same per-account session and
  single-flight refresh as REST, renewed before it expires. A token is therefore as fresh
  as the subscription; when the venue drops a subscription, the client's resubscribe
  carries a renewed one.
* Commands that need no change are forwarded byte for byte; a frame that is not JSON
  text is forwarded as is (the venue refuses it alike, and it carries no token of ours).

Choices: ``mode: api_key`` has no access token, so ``ws_upstream`` needs ``mode: jwt``
(checked at startup). A private channel is recognised by its name after the first ``:``.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.errors import ProxyError, SigningFailed
from proxy.signers.base import SignContext
from proxy.signers.evedex.signer import EvedexSigner
from proxy.ws.base import StreamLogin, Verdict
from proxy.ws.frames import Frame

PRIVATE_PREFIXES = ("user-", "order-", "position-", "funding-", "tpsl-", "order-fee-", "transfer-update-")
CREDENTIAL_COMMANDS = ("connect", "subscribe", "refresh", "sub_refresh")


def is_private(channel: str) -> bool:
    name = channel.partition(":")[2] if ":" in channel else channel
    return name.startswith(PRIVATE_PREFIXES)


def strip_credentials(command: dict[str, Any]) -> bool:
    """Remove client-supplied tokens from one command in place; True when it changed."""
    changed = False
    for kind in CREDENTIAL_COMMANDS:
        body = command.get(kind)
        if not isinstance(body, dict):
            continue
        changed |= body.pop("token", None) is not None
        data = body.get("data")
        if isinstance(data, dict) and "accessToken" in data:
            del data["accessToken"]
            changed = True
    return changed


def private_subscription(command: dict[str, Any]) -> dict[str, Any] | None:
    body = command.get("subscribe")
    if isinstance(body, dict) and isinstance(body.get("channel"), str) and is_private(body["channel"]):
        return body
    return None


class EvedexLogin(StreamLogin):
    scheme = "evedex"

    async def from_client(self, frame: Frame) -> Verdict:
        text = frame.text()
        if text is None:
            return Verdict(to_venue=frame)
        lines = text.split("\n")
        rewritten = [await self._command(line) for line in lines]
        if rewritten == lines:
            return Verdict(to_venue=frame)
        out = "\n".join(rewritten)
        return Verdict(to_venue=Frame(out if frame.is_text else out.encode()))

    async def _command(self, line: str) -> str:
        try:
            command = json.loads(line)
        except (ValueError, RecursionError):
            return line
        if not isinstance(command, dict):
            return line
        changed = strip_credentials(command)
        subscription = private_subscription(command)
        if subscription is not None:
            data = subscription.get("data")
            subscription["data"] = {
                **(data if isinstance(data, dict) else {}),
                "accessToken": await self._token(),
            }
            changed = True
        return json.dumps(command, separators=(",", ":"), ensure_ascii=False) if changed else line

    async def _token(self) -> str:
        ctx = self.ctx
        signer = ctx.venue.signer
        if not isinstance(signer, EvedexSigner):  # the registry pairs schemes; this guards a miswiring
            raise SigningFailed("evedex", "the venue's signer is not EVEDEX's")
        sign_ctx = SignContext(ctx.venue.name, ctx.account, ctx.now_ms())
        try:
            return await signer.access_token(ctx.creds, sign_ctx, ctx.http)
        except ProxyError:
            raise
        except Exception:  # a library error may quote key material: keep only that it failed
            raise SigningFailed("evedex", "could not obtain an access token") from None
