"""The signer interface: how a venue's authentication is added to a request.

A signer is *sans-IO* (after httpx's ``Auth.auth_flow``): ``sign`` is a pure function of
the outgoing request, the account's credentials and the time, and returns the request
to forward. The pipeline owns all I/O. A scheme that must talk to the venue to
authenticate (EVEDEX's SIWE login and JWT refresh) overrides ``flow``, which receives a
``send`` coroutine and may call it more than once.

To add a venue scheme:

1. Create ``proxy/signers/<scheme>.py`` with pure module-level functions for the
   scheme's prehash and signature (pinned to ``../shared/vectors/<scheme>.json`` in
   ``tests/unit/signers/``), and a ``Signer`` subclass that sets ``scheme``,
   ``required_fields`` (Vault KV fields), ``owned_headers`` (lower-case names or
   prefixes ending in ``-`` that the scheme owns and the client may never send) and
   implements ``sign``.
2. Add one line to ``SIGNERS`` in ``proxy/signers/__init__.py``.
3. Add a simulated venue in ``proxy/sim/`` that verifies the scheme as strictly as
   the venue does.

Signers are built once per configured venue from its scheme options and must not keep
per-request state: the same instance signs concurrent requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from proxy.credentials.base import Credentials


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request as it will be sent upstream.

    ``target`` is the upstream path plus ``?query`` exactly as the client sent it (what
    venues sign); a signer that must change the query builds a new target string.
    ``headers`` are lower-case names, already cleaned of hop-by-hop and venue-owned
    headers (``proxy.hygiene``). ``body`` is the exact bytes that will be forwarded.
    ``origin`` is ``None`` for the venue's configured upstream; a scheme that logs in
    elsewhere (EVEDEX's auth API) sets it from its *configured* options, never from
    anything the client sent.
    """

    method: str
    target: str
    # repr=False: signed headers, order bodies and login replies carry signatures and tokens.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    body: bytes = field(default=b"", repr=False)
    origin: str | None = None

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def with_headers(self, *extra: tuple[str, str]) -> OutgoingRequest:
        return replace(self, headers=self.headers + extra)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """What came back from the venue: relayed to the client unchanged."""

    status: int
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    body: bytes = field(default=b"", repr=False)
    extensions: dict[str, Any] = field(default_factory=dict)


Send = Callable[[OutgoingRequest], Awaitable[UpstreamReply]]
# (venue, event, result): session events a scheme reports, e.g. ("evedex", "refresh", "ok").
SessionEvents = Callable[[str, str, str], None]


def _ignore_events(venue: str, event: str, result: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SignContext:
    """Everything a signer may read besides the request and credentials."""

    venue: str
    account: str
    now_ms: int


class SchemeOptions(BaseModel):
    """Per-venue options of a scheme (keys beside ``scheme`` in the venue config).

    Subclass it per scheme; unknown keys are rejected at startup, naming the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Signer:
    """Base class for a venue authentication scheme. See the module docstring."""

    scheme: ClassVar[str]
    Options: ClassVar[type[SchemeOptions]] = SchemeOptions
    required_fields: ClassVar[tuple[str, ...]] = ()
    owned_headers: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: SchemeOptions | Mapping[str, Any] | None = None) -> None:
        if not isinstance(options, SchemeOptions):
            options = self.Options.model_validate(dict(options or {}))
        self.options = options
        self.events: SessionEvents = _ignore_events  # create_app points it at the metrics

    def sign(self, request: OutgoingRequest, creds: Credentials, ctx: SignContext) -> OutgoingRequest:
        raise NotImplementedError

    async def flow(
        self,
        request: OutgoingRequest,
        creds: Credentials,
        ctx: SignContext,
        send: Send,
    ) -> UpstreamReply:
        """Sign and send once. Override only when authentication needs extra round trips."""
        return await send(self.sign(request, creds, ctx))

    def __repr__(self) -> str:  # never echo options that might one day hold secrets
        return f"<{type(self).__name__} scheme={self.scheme}>"
