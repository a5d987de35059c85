"""Who may open which stream: the REST steps, in the REST order, on the upgrade request.

A stream is decided as what it is on the wire, the HTTP ``GET`` of its path (RFC 6455
4.1): identity first (401 whatever the path), then the route (404), then the policy with
method ``GET`` and the upstream path (403). A rule with ``methods: [GET]`` (or without
``methods``) covering the path allows the stream; a deny rule on the path refuses it.
Field constraints on such a rule see the query string (a stream has no body).

The state is read from the pipeline at connection time (``policies``, ``venues``), so a
reload applies to the next stream; a stream keeps what it started with.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.errors import BadRequest, PolicyDenied, UnknownRoute
from proxy.identity import identify
from proxy.pipeline import Incoming, Pipeline, Venue
from proxy.policy import Client, Decision, decide, decide_request_fields
from proxy.routing import Route, parse_route
from proxy.ws.logins import LOGINS

STREAM_METHOD = "GET"


@dataclass(frozen=True, slots=True)
class StreamGrant:
    client: Client
    route: Route
    venue: Venue
    decision: Decision

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
    client = identify(pipeline.policies, request.header("proxy-authorization"), request.peer)
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
    return StreamGrant(client, route, venue, decision)
