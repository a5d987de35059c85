"""EVEDEX (perp DEX): SIWE login -> JWT bearer (or ``x-api-key``), EIP-712 order signatures.

Scheme (``../shared/venues.md`` section 2; confidence H for signing, M for hosts/lifetimes;
vectors ``vectors/evedex.json``). Sources: ``evedex-official/exchange-crypto@fc84c12``
(1.0.24), ``evedex-official/exchange-api@e9f4c4e`` (``authRestGateway.ts``,
``exchangeRestGateway.ts``), ``evedex-official/exchange-bot-sdk@7ebc6b5`` (``rest.ts``).

* Every request carries the account's credential: ``x-api-key: <api_key>`` in ``api_key``
  mode, ``Authorization: Bearer <accessToken>`` in ``jwt`` mode (the default).
* Order, replace, position-close, TP/SL and withdraw bodies additionally carry an EIP-712
  signature by the account's wallet, built from the body (``orders``). Nothing else
  is signed per request; other requests only gain the auth header.
* ``jwt`` mode logs in with SIWE (``session``) against ``auth_upstream`` and keeps
  one long-lived session per account (STYLE.md habit 9). The access token is refreshed
  ``refresh_leeway_s`` before it expires (its JWT lifetime ``exp - iat`` counted from
  receipt, else ``exp``; ``session.Tokens``); a 401 from the venue triggers one
  single-flight refresh and one replay (DESIGN.md: a 401 means the venue rejected the
  request before executing it). A refresh answered 401 (or unreadable) falls back to a
  fresh SIWE login; a second 401 after the replay goes back to the client unchanged and
  counts in ``replay_rejections``.

Choices where the sources are silent (see also ``orders`` and ``session``):

* **Host**: ``auth_upstream`` is configured (PROD ``https://auth-api.evedex.com``; the docs'
  ``auth.evedex.com`` serves an HTML shell). The trading origin is the venue's ``upstream``
  (``trading-api.evedex.com`` per the SDK; ``exchange-api.`` also appears, venues.md Q3).
* **api_key mode still signs orders** with the wallet key (the SDK README places orders
  with an API key plus a wallet signature; venues.md Q3/Q4), so ``wallet_private_key`` is
  required in both modes and ``api_key`` only in ``api_key`` mode.
* **Session key**: the session is dropped and re-established when the account's wallet
  address changes (credential rotation), so tokens never outlive the key that earned them.
* **Login failures** other than the handled 401s (nonce/sign-up/refresh answering an error
  status, unreadable answers, unreachable auth API) raise ``CredentialsUnavailable`` with the
  status only; tokens, keys and venue bodies never reach a message.
* **Signed endpoints** are exactly those below (method + path; path values percent-decoded).
  v1 order paths, batch replace and TP/SL update are not mapped: they pass with the auth
  header only, so the venue refuses them if they need a signature.
* **mass-limit** is a JSON array of 1..20 limit orders; each element is signed on its own
  as a ``New limit order`` with the path's instrument (the SDK signs each with
  ``signLimitOrder`` and posts the array).
* **Content-Type**: a re-signed order body is JSON; ``content-type: application/json`` is
  added if the client sent none (the forwarder adds no headers of its own).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import coincurve
from pydantic import Field, field_validator, model_validator

from proxy.errors import (
    BadRequest,
    CredentialsUnavailable,
    SigningFailed,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from proxy.messages import Credentials, OutgoingRequest, UpstreamReply, require_fields
from proxy.signers import envelopes
from proxy.signers.base import SchemeOptions, Send, SignContext, Signer
from proxy.signers.evedex import orders
from proxy.signers.evedex import session as siwe
from proxy.signers.evedex.session import API_KEY, AUTHORIZATION, Wallet, bearer, load_wallet, with_credential

_JSON = ("content-type", "application/json")
_ORIGIN_ONLY = "auth_upstream must be an origin such as https://auth-api.evedex.com"


class EvedexOptions(SchemeOptions):
    mode: Literal["jwt", "api_key"] = "jwt"
    chain_id: int = Field(161803, gt=0)  # PROD; DEMO/DEV use 16182 (exchange-bot-sdk params.ts)
    auth_upstream: str | None = None
    siwe_domain: str = "evedex.com"
    siwe_uri: str = "https://evedex.com"
    siwe_statement: str = "Sign in to evedex.com"
    refresh_leeway_s: int = Field(30, ge=0)
    # A request waits at most this long for the account's renewal already running in this
    # replica, then gets credentials_unavailable (the queue behind a stuck login is bounded).
    session_wait_s: float = Field(20, gt=0, le=600)

    @field_validator("auth_upstream")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(_ORIGIN_ONLY)
        if parts.query or parts.fragment:
            raise ValueError(_ORIGIN_ONLY)
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _jwt_needs_auth_upstream(self) -> EvedexOptions:
        if self.mode == "jwt" and self.auth_upstream is None:
            raise ValueError("auth_upstream is required in jwt mode")
        return self


# --- which requests carry an EIP-712 signature (exchange-api exchangeRestGateway.ts) -----


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    order_type: orders.OrderType
    batch: bool = False


def _route(method: str, path: str, order_type: orders.OrderType, batch: bool = False) -> Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(pattern), order_type, batch)


ROUTES = (
    _route("POST", "/api/v2/order/limit", orders.LIMIT),
    _route("POST", "/api/v2/order/market", orders.MARKET),
    _route("POST", "/api/v2/order/stop-limit", orders.STOP_LIMIT),
    _route("POST", "/api/v2/order/mass-limit/{instrument}", orders.LIMIT, batch=True),
    _route("POST", "/api/v2/position/{instrument}/close", orders.POSITION_CLOSE),
    _route("POST", "/api/tpsl/{instrument}", orders.TPSL),
    _route("PUT", "/api/order/{orderId}/limit", orders.REPLACE_LIMIT),
    _route("PUT", "/api/order/{orderId}/stop-limit", orders.REPLACE_STOP_LIMIT),
    _route("POST", "/api/transfer/pf/withdraw", orders.WITHDRAW),
)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The signed endpoint for ``method path`` and its path values (percent-decoded)."""
    for route in ROUTES:
        found = route.pattern.fullmatch(path) if route.method == method.upper() else None
        if found:
            return route, {name: unquote(value) for name, value in found.groupdict().items()}
    return None


def sign_order_body(request: OutgoingRequest, key: coincurve.PrivateKey, chain_id: int) -> OutgoingRequest:
    """The request with its body re-signed if it goes to a signed endpoint, else unchanged."""
    found = match_route(request.method, request.path)
    if found is None:
        return request
    route, path_values = found
    payload = orders.parse_json(request.body)
    if route.batch:
        body: Any = _sign_batch(route.order_type, payload, path_values, chain_id, key)
    else:
        body = orders.sign_payload(route.order_type, payload, path_values, chain_id, key)
    headers = request.headers if request.header("content-type") else (*request.headers, _JSON)
    return replace(request, body=orders.dump_json(body), headers=headers)


def _sign_batch(
    order_type: orders.OrderType,
    payload: Any,
    path_values: dict[str, str],
    chain_id: int,
    key: coincurve.PrivateKey,
) -> list[dict[str, Any]]:
    limit = orders.MASS_LIMIT_MAX
    if not isinstance(payload, list) or not 1 <= len(payload) <= limit:
        raise BadRequest(f"evedex: mass-limit body must be a JSON array of 1 to {limit} orders")
    return [
        orders.sign_payload(order_type, item, path_values, chain_id, key, f"orders[{index}].")
        for index, item in enumerate(payload)
    ]


# --- sessions ----------------------------------------------------------------------------


class _Session:
    """One account's venue session; ``lock`` makes refresh and login single-flight."""

    __slots__ = ("address", "lock", "tokens")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.address: str | None = None  # the wallet the tokens were issued to
        self.tokens: siwe.Tokens | None = None

    def tokens_for(self, wallet: Wallet) -> siwe.Tokens | None:
        return self.tokens if self.address == wallet.address else None

    def __repr__(self) -> str:
        return f"<EvedexSession wallet={self.address} active={self.tokens is not None}>"


class SessionStore(Protocol):
    """Where an account's tokens are shared between replicas (``proxy.credentials.sessions_redis``).

    ``lock`` makes a login or refresh single-flight across every replica using the store;
    ``load`` answers the latest tokens any replica saved, with the wallet they belong to.
    The default, ``LocalSessions``, shares nothing: each process keeps its own session.
    """

    async def load(self, venue: str, account: str) -> tuple[str, siwe.Tokens] | None: ...

    async def save(self, venue: str, account: str, address: str, tokens: siwe.Tokens) -> None: ...

    def lock(self, venue: str, account: str) -> AbstractAsyncContextManager[object]: ...


class LocalSessions:
    """One process: the per-account ``asyncio.Lock`` already makes renewals single-flight."""

    async def load(self, venue: str, account: str) -> tuple[str, siwe.Tokens] | None:
        return None

    async def save(self, venue: str, account: str, address: str, tokens: siwe.Tokens) -> None:
        return None

    def lock(self, venue: str, account: str) -> AbstractAsyncContextManager[object]:
        return nullcontext()


class EvedexSigner(Signer):
    scheme = "evedex"
    Options = EvedexOptions
    required_fields = ("wallet_private_key",)
    owned_headers = frozenset({AUTHORIZATION, API_KEY})
    envelope = envelopes.evedex
    streams = True
    options: EvedexOptions

    @classmethod
    def stream_problem(cls, options: Mapping[str, Any]) -> str | None:
        if options.get("mode", "jwt") != "jwt":
            return "EVEDEX private channels need an access token: streams need mode jwt"
        return None

    def __init__(self, options: SchemeOptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.opts = self.options  # the typed options (a name the tests and flows read)
        self._sessions: dict[tuple[str, str], _Session] = {}
        self.sessions: SessionStore = LocalSessions()  # create_app shares them through Redis
        self.replay_rejections = 0  # a 401 answered to the replay (also a metric via self.events)

    def validate_secret(self, creds: Credentials) -> None:
        super().validate_secret(creds)
        wallet_key = creds.get("wallet_private_key")
        if wallet_key is not None:
            load_wallet(wallet_key)  # the signer's own secp256k1 parse

    def sign(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> OutgoingRequest:
        """api_key mode: the whole scheme. jwt mode needs round trips: see ``flow``."""
        if self.opts.mode != "api_key":
            raise SigningFailed(self.scheme, "jwt mode authenticates in flow(), not sign()")
        require_fields(creds, ("api_key",), ctx.venue, ctx.account)
        wallet = load_wallet(creds["wallet_private_key"])
        signed = sign_order_body(request, wallet.signing_key, self.opts.chain_id)
        return with_credential(signed, API_KEY, creds["api_key"])

    async def flow(
        self, request: OutgoingRequest, creds: Credentials, ctx: SignContext, send: Send
    ) -> UpstreamReply:
        if self.opts.mode == "api_key":
            return await send(self.sign(request, creds, ctx))
        wallet = load_wallet(creds["wallet_private_key"])
        signed = sign_order_body(request, wallet.signing_key, self.opts.chain_id)  # before any I/O
        session = self._sessions.setdefault((ctx.venue, ctx.account), _Session())
        token = await self._access_token(session, wallet, ctx, send)
        reply = await send(with_credential(signed, AUTHORIZATION, bearer(token)))
        if reply.status != 401:
            return reply
        token = await self._renew_after_401(session, token, wallet, ctx, send)
        reply = await send(with_credential(signed, AUTHORIZATION, bearer(token)))
        if reply.status == 401:
            self.replay_rejections += 1
        self.events(ctx.venue, "replay", "rejected" if reply.status == 401 else "ok")
        return reply

    async def access_token(self, creds: Credentials, ctx: SignContext, send: Send) -> str:
        """The account's current access token from the same single-flight session as REST
        (``proxy.ws.evedex`` puts it in private channel subscriptions). jwt mode only."""
        if self.opts.mode != "jwt":
            raise SigningFailed(self.scheme, "access tokens exist in jwt mode only")
        wallet = load_wallet(creds["wallet_private_key"])
        session = self._sessions.setdefault((ctx.venue, ctx.account), _Session())
        return await self._access_token(session, wallet, ctx, send)

    async def _access_token(self, session: _Session, wallet: Wallet, ctx: SignContext, send: Send) -> str:
        """A usable access token, renewed (single-flight) when it is about to expire."""
        access = self._fresh(session.tokens_for(wallet), ctx)
        if access is not None:
            return access
        async with self._waiting(session, ctx):  # single flight in this process...
            tokens = await self._latest(session, wallet, ctx)  # another request may have renewed
            access = self._fresh(tokens, ctx)
            if access is not None:
                return access
            async with self.sessions.lock(ctx.venue, ctx.account):  # ... and across replicas
                tokens = await self._latest(session, wallet, ctx)
                access = self._fresh(tokens, ctx)
                if access is None:
                    access = (await self._renew(session, tokens, wallet, ctx, send)).access
            return access

    @asynccontextmanager
    async def _waiting(self, session: _Session, ctx: SignContext) -> AsyncIterator[None]:
        """``session.lock``, waited for at most ``session_wait_s`` (observed in the metrics)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.opts.session_wait_s):
                await session.lock.acquire()
        except TimeoutError:
            self.lock_waits(ctx.venue, "local", "gave_up", loop.time() - started)
            detail = f"evedex session renewal in progress; gave up after {self.opts.session_wait_s:g}s"
            raise CredentialsUnavailable(ctx.venue, ctx.account, detail) from None
        self.lock_waits(ctx.venue, "local", "acquired", loop.time() - started)
        try:
            yield
        finally:
            session.lock.release()

    def _fresh(self, tokens: siwe.Tokens | None, ctx: SignContext) -> str | None:
        """The access token if it is not due for renewal."""
        if tokens is None or tokens.access_due(ctx.now_ms, self.opts.refresh_leeway_s * 1000):
            return None
        return tokens.access

    async def _latest(self, session: _Session, wallet: Wallet, ctx: SignContext) -> siwe.Tokens | None:
        """This process's tokens, replaced by the shared ones when another replica renewed."""
        shared = await self.sessions.load(ctx.venue, ctx.account)
        if shared is not None and shared[0] == wallet.address and shared[1] != session.tokens:
            session.address, session.tokens = shared
        return session.tokens_for(wallet)

    async def _renew_after_401(
        self, session: _Session, rejected: str, wallet: Wallet, ctx: SignContext, send: Send
    ) -> str:
        """Renew once per rejected token: every request that saw it reuses the one renewal."""
        async with self._waiting(session, ctx):
            tokens = await self._latest(session, wallet, ctx)
            if tokens is not None and tokens.access != rejected:
                return tokens.access
            async with self.sessions.lock(ctx.venue, ctx.account):
                tokens = await self._latest(session, wallet, ctx)
                if tokens is None or tokens.access == rejected:
                    tokens = await self._renew(session, tokens, wallet, ctx, send)
            return tokens.access

    async def _renew(
        self, session: _Session, tokens: siwe.Tokens | None, wallet: Wallet, ctx: SignContext, send: Send
    ) -> siwe.Tokens:
        """Refresh while the refresh token lives, else (or if refused) log in. Lock held."""
        renewed = None
        if tokens is not None and not tokens.refresh_expired(ctx.now_ms):
            renewed = await self._refresh(tokens, ctx, send)
            self.events(ctx.venue, "refresh", "rejected" if renewed is None else "ok")
        if renewed is None:
            try:
                renewed = await self._login(wallet, ctx, send)
            except Exception:
                self.events(ctx.venue, "login", "failed")
                raise
            self.events(ctx.venue, "login", "ok")
        session.address, session.tokens = wallet.address, renewed
        await self.sessions.save(ctx.venue, ctx.account, wallet.address, renewed)
        return renewed

    async def _refresh(self, tokens: siwe.Tokens, ctx: SignContext, send: Send) -> siwe.Tokens | None:
        """``POST /auth/refresh``; ``None`` means "log in again" (401 or unreadable answer)."""
        request = with_credential(self._auth("POST", "/auth/refresh"), AUTHORIZATION, bearer(tokens.refresh))
        reply = await self._auth_send(send, request, ctx, "refresh")
        if reply.status == 401:
            return None
        _expect_ok(reply, ctx, "refresh")
        return siwe.read_session(reply.body, ctx.now_ms)

    async def _login(self, wallet: Wallet, ctx: SignContext, send: Send) -> siwe.Tokens:
        """SIWE: nonce -> signed EIP-4361 message -> sign-up -> Session tokens."""
        reply = await self._auth_send(send, self._auth("GET", "/auth/nonce"), ctx, "nonce")
        _expect_ok(reply, ctx, "nonce")
        nonce = siwe.read_nonce(reply.body)
        if nonce is None:
            raise _login_failed(ctx, "unreadable nonce answer")
        message = siwe.siwe_message(
            domain=self.opts.siwe_domain,
            address=wallet.address,
            statement=self.opts.siwe_statement,
            uri=self.opts.siwe_uri,
            chain_id=self.opts.chain_id,
            nonce=nonce,
            issued_at=siwe.iso_ms(ctx.now_ms),
        )
        signature = siwe.personal_sign(wallet.account, message)
        body = siwe.sign_up_body(wallet.address, message, nonce, signature)
        sign_up = replace(self._auth("POST", "/auth/user/sign-up"), body=body).with_headers(_JSON)
        reply = await self._auth_send(send, sign_up, ctx, "sign-up")
        _expect_ok(reply, ctx, "sign-up")
        tokens = siwe.read_session(reply.body, ctx.now_ms)
        if tokens is None:
            raise _login_failed(ctx, "unreadable sign-up answer")
        return tokens

    def _auth(self, method: str, target: str) -> OutgoingRequest:
        """A request to the configured auth API (never an origin the client chose)."""
        accept = (("accept", "application/json"),)
        return OutgoingRequest(method, target, accept, origin=self.opts.auth_upstream)

    @staticmethod
    async def _auth_send(send: Send, request: OutgoingRequest, ctx: SignContext, step: str) -> UpstreamReply:
        try:
            return await send(request)
        except (UpstreamUnreachable, UpstreamTimeout) as exc:
            raise _login_failed(ctx, f"{step} {exc.code}") from None


def _expect_ok(reply: UpstreamReply, ctx: SignContext, step: str) -> None:
    if not 200 <= reply.status < 300:
        raise _login_failed(ctx, f"{step} answered {reply.status}")


def _login_failed(ctx: SignContext, detail: str) -> CredentialsUnavailable:
    # Status and step only: venue bodies may echo tokens or the signed message.
    return CredentialsUnavailable(ctx.venue, ctx.account, f"evedex login failed: {detail}")
