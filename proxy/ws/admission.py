"""Who may open which stream: the REST steps, in the REST order, on the upgrade request.

A stream is decided as what it is on the wire, the HTTP ``GET`` of its path (RFC 6455
4.1): identity first (401 whatever the path), then the route (404), then the policy with
method ``GET`` and the upstream path (403). A rule with ``methods: [GET]`` (or without
``methods``) covering the path allows the stream; a deny rule on the path refuses it.
Field constraints on such a rule see the query string (a stream has no body).

Admission (``admit_stream``) charges the open like a REST request, through the same
pipeline functions: a stream open is a request (``docs/websockets.md``).

The state is read from the pipeline at connection time (``policies``, ``venues``), so a
reload applies to the next stream; a stream keeps what it started with.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.errors import BadRequest, PolicyDenied, UnknownRoute
from proxy.identity import identify
from proxy.pipeline import Audit, Incoming, Pipeline, Venue
from proxy.policy.rules import Client, Decision, PolicySet, decide, decide_request_fields
from proxy.routing import Route, parse_route
from proxy.signers.base import OutgoingRequest
from proxy.ws.logins import LOGINS

STREAM_METHOD = "GET"


@dataclass(frozen=True, slots=True)
class StreamGrant:
    client: Client
    route: Route
    venue: Venue
    decision: Decision
    policies: PolicySet  # the policies that decided: admission charges their buckets

    @property
    def key(self) -> str:
        """The venue account the stream uses: what per-key limits count."""
        return f"{self.route.venue}/{self.route.account}"

    @property
    def origin(self) -> str:
        assert self.venue.ws_origin is not None  # admitted only when set
        return self.venue.ws_origin


def authorize_stream(pipeline: Pipeline, request: Incoming) -> StreamGrant:
    """Raise the contract error that refuses the stream, or return what allows it."""
    policies = pipeline.policies  # one snapshot for the whole decision, as in REST
    client = identify(policies, request.header("proxy-authorization"), request.peer)
    route = parse_route(request.raw_path, request.query)
    venue = pipeline.venues.get(route.venue)
    if venue is None or route.account not in venue.accounts:
        raise UnknownRoute(f"unknown venue or account: {route.venue}/{route.account}")
    if venue.ws_origin is None or venue.signer.scheme not in LOGINS:
        raise UnknownRoute(f"venue {route.venue} has no WebSocket upstream (ws_upstream)")
    decision = decide(client, route.venue, route.account, STREAM_METHOD, route.upstream_path)
    if decision.pending is not None:
        decision = decide_request_fields(decision, route.query, b"", None, None, venue.signer.scheme)
    if decision.bad_request:  # an ambiguous query (docs/policies.md): 400, as on REST
        raise BadRequest(decision.reason)
    if not decision.allowed:
        raise PolicyDenied(decision.reason)
    return StreamGrant(client, route, venue, decision, policies)


async def admit_stream(pipeline: Pipeline, grant: StreamGrant, audit: Audit) -> None:
    """Charge a stream open as the request it is, with the REST pipeline's own steps.

    ``Pipeline.admit``: the client's and the account's buckets (and the key's cooldown);
    ``Pipeline.charge_venue``: the venue profile's ``streams`` groups (the venue's login /
    connection limit) and the key's and venue's cooldowns. Both run before the venue
    connection is opened, so a refusal is a 429 before the upgrade and no login is signed.
    """
    route = grant.route
    audit.client = grant.client.name
    await pipeline.admit(grant.policies, grant.client.name, grant.client.rate_limit, route, audit)
    opening = OutgoingRequest(STREAM_METHOD, route.target)
    await pipeline.charge_venue(grant.venue, route.account, audit, opening, stream=True)
