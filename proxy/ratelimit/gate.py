"""What one request is charged, and the gate the pipeline charges it through.

``proxy.app.build_rate_limits`` resolves every configured venue's profile
(``proxy.ratelimit.profiles``) with the operator's ``rate_limits.overrides`` into
``VenueLimits``: for an upstream request, the buckets of every group it matches (its cost
counted from the body where the profile says so) and where a "slow down" from the venue
goes. ``RateGate`` charges those buckets, and the client's and the policy file's, through
the ``Limiter`` backend (``proxy.ratelimit.limiter``), queueing a client up to its ``max_wait_ms``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.bounded import BoundedCache
from proxy.errors import RateLimited, RateLimitUnavailable
from proxy.messages import OutgoingRequest, UpstreamReply
from proxy.policy.path_spelling import canonical_path
from proxy.policy.rules import PolicySet, RateSpec
from proxy.ratelimit.limiter import Bucket, Limiter
from proxy.ratelimit.profiles import Feedback, Group, Rule

# A group a request matched: its bucket at one unit, and the rule that prices the request.
Matched = tuple[tuple[Bucket, Rule], ...]

log = logging.getLogger("signing_proxy.ratelimit")


@dataclass(frozen=True, slots=True)
class Charge:
    """The venue-side limits of one upstream request and where its feedback goes."""

    venue: str
    account: str
    buckets: tuple[Bucket, ...]
    account_buckets: tuple[Bucket, ...]  # what the venue's remaining-quota header describes
    cooldown_key: str  # which key a "slow down" pauses
    feedback: Feedback


@dataclass(frozen=True, slots=True)
class VenueLimits:
    venue: str
    profile: str | None
    ip_groups: tuple[Group, ...]
    account_groups: Mapping[str, tuple[Group, ...]]  # account -> its groups, overrides applied
    feedback: Feedback
    default_groups: tuple[Group, ...] = ()  # an account added later (reload): venue-wide numbers
    # (account, method, path, stream) -> the groups that request matches (issue 17). Which
    # groups match is a pure function of the key and these (frozen) limits; a reload builds
    # new VenueLimits, so the cache goes with the old ones. Bounded: paths come from clients.
    _plans: BoundedCache[tuple[str, str, str, bool], tuple[Matched, Matched]] = field(
        default_factory=BoundedCache, init=False, compare=False, repr=False
    )

    def charge(self, account: str, request: OutgoingRequest, stream: bool = False) -> Charge:
        """The groups ``request`` matches; ``stream``: it opens a stream (``streams: true`` groups)."""
        key = f"{self.venue}/{account}"
        plan_key = (account, request.method, request.path, stream)
        plan = self._plans.get(plan_key)
        if plan is None:
            canonical = canonical_path(request.path)  # every spelling the venue routes here pays here
            groups = self.account_groups.get(account, self.default_groups)
            plan = (
                _matched(groups, key, request.method, canonical, stream),
                _matched(self.ip_groups, self.venue, request.method, canonical, stream),
            )
            self._plans.put(plan_key, plan)
        own, ip = _priced(plan[0], request.body), _priced(plan[1], request.body)
        # An IP-wide limit answered "slow down" for the whole venue (Icrypex: "Policy: IP").
        cooldown = self.venue if ip and not own else key
        return Charge(self.venue, account, (*own, *ip), own, cooldown, self.feedback)


def _matched(groups: Iterable[Group], owner: str, method: str, canonical: str, stream: bool) -> Matched:
    found = []
    for group in groups:
        if group.streams != stream:  # a stream open is not a REST call to the REST host
            continue
        rule = group.rule_for(method, canonical)
        if rule is not None:
            found.append((group.bucket(owner), rule))
    return tuple(found)


def _priced(matched: Matched, body: bytes) -> tuple[Bucket, ...]:
    """The matched buckets at this request's cost (a batch of orders may cost more than one)."""
    return tuple(
        bucket if rule.per_item is None else Bucket(bucket.name, bucket.spec, rule.cost_of(body))
        for bucket, rule in matched
    )


class RateLimits:
    """The venue profiles of every configured venue, overrides applied."""

    def __init__(self, venues: Mapping[str, VenueLimits] | None = None) -> None:
        self.venues = dict(venues or {})

    def charge(self, venue: str, account: str, request: OutgoingRequest, stream: bool = False) -> Charge:
        limits = self.venues.get(venue)
        if limits is None:  # no profile: a 429 still pauses the key
            return Charge(venue, account, (), (), f"{venue}/{account}", Feedback())
        return limits.charge(account, request, stream)


Sleep = Callable[[float], Awaitable[Any]]


class RateGate:
    """What the pipeline calls: charges a request's limits, queues a client up to its
    ``max_wait_ms``, and turns a venue's "slow down" into a shared cooldown.

    Two charges per request, both before signing: ``admit_client`` before the body is read
    (the client and policy-file buckets, and the key's cooldowns) and ``before_send`` once
    the upstream request is known (the venue profile's groups, whose cost may depend on the
    body). The pipeline takes the signing time only after both (and their waits) passed.
    The wait budget is per request, shared by both; it lives in ``state`` (the request's
    ``Audit.extra``), which also records how long the request waited (``rate_wait_ms``).
    """

    WAITED = "rate_wait_ms"

    def __init__(
        self,
        limiter: Limiter,
        limits: RateLimits | None = None,
        max_wait_ms: int = 0,
        client_max_wait_ms: Mapping[str, int] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limiter = limiter
        self.limits = limits
        self.max_wait_ms = max_wait_ms
        self.client_max_wait_ms = dict(client_max_wait_ms or {})
        self._sleep = sleep

    async def admit_client(
        self,
        policies: PolicySet,
        client: str,
        client_spec: RateSpec | None,
        venue: str,
        account: str,
        state: dict[str, object],
    ) -> None:
        key = f"{venue}/{account}"
        buckets = []
        account_spec = policies.account_limits.get(key)
        if account_spec is not None:
            buckets.append(Bucket(f"account {key}", account_spec))
        if client_spec is not None:
            buckets.append(Bucket(f"client {client}", client_spec))
        if buckets:  # cooldowns are checked here too, so a paused key costs no client token
            cooldowns = (key, venue) if self.limits is not None else ()
            await self.charge(buckets, cooldowns, client, state)

    async def before_send(
        self,
        venue: str,
        account: str,
        client: str | None,
        request: OutgoingRequest,
        state: dict[str, object],
        stream: bool = False,
    ) -> Charge | None:
        """The venue profile's groups for ``request`` (a stream open: its ``streams`` groups)
        and the key's and venue's cooldowns."""
        if self.limits is None:
            return None
        charge = self.limits.charge(venue, account, request, stream)
        await self.charge(charge.buckets, (f"{venue}/{account}", venue), client, state)
        return charge

    async def after_reply(self, charge: Charge | None, reply: UpstreamReply) -> None:
        if charge is None:
            return
        slow = charge.feedback.slow_down(reply)
        if slow is not None:
            seconds, reason = slow
            log.warning(
                "venue asked to slow down: key paused",
                extra={"key": charge.cooldown_key, "reason": reason, "cooldown_s": seconds},
            )
            await self.limiter.cool_down(charge.cooldown_key, seconds, reason)
        remaining = charge.feedback.remaining(reply)
        if remaining is None:
            return
        for bucket in charge.account_buckets:
            # Our own count is trusted while the venue reports half the group left; below
            # that the shared bucket is lowered to the venue's figure (slow down before a ban).
            if remaining < bucket.capacity / 2:
                self.limiter.stats.slowdowns += 1
                await self.limiter.clamp(bucket, remaining)

    async def charge(
        self,
        buckets: Sequence[Bucket],
        cooldowns: Sequence[str],
        client: str | None,
        state: dict[str, object],
    ) -> None:
        """Admit or raise ``RateLimited`` naming the limit; nothing is taken on refusal."""
        if not buckets and not cooldowns:
            return
        budget_ms = self.client_max_wait_ms.get(client or "", self.max_wait_ms)
        while True:
            refusal = await self.limiter.admit(buckets, cooldowns=cooldowns)
            if refusal is None:
                return
            waited_ms = float(state.get(self.WAITED, 0.0))  # type: ignore[arg-type]
            wait_ms = max(refusal.retry_after_s * 1000, 1.0)
            if refusal.backend is not None:
                raise RateLimitUnavailable(refusal.backend, refusal.limit, refusal.retry_after_s)
            if not refusal.queueable or waited_ms + wait_ms > budget_ms:
                raise RateLimited(refusal.limit, refusal.retry_after_s)
            await self._sleep(wait_ms / 1000)
            state[self.WAITED] = round(waited_ms + wait_ms, 3)
