"""Rate limits shared by every replica: the ``Limiter`` interface on Redis.

Every operation is one Lua script that Redis runs atomically, and every script reads the
time from the Redis server (``TIME``), never from the replica: replicas whose clocks are
skewed share one clock, so skew can neither over-admit nor refuse early. Keys share one
hash tag (``{<prefix>}``) so a request's buckets live in one Redis Cluster slot::

    {<prefix>}:rl:t:<bucket name>   hash  t=tokens s=stamp (µs, server time)  token bucket
    {<prefix>}:rl:w:<bucket name>   zset  one member per unit, score = stamp (µs)  sliding window
    {<prefix>}:rl:c:<key>           string reason, expiring when the cooldown ends

Keys expire once they carry no information (a full bucket, an empty window).

Every script goes out on the process's one pipelined connection (``RedisPipe``): one
``EVALSHA`` per decision, never resent. A decision whose reply is lost (timeout, dropped
connection) may have been charged on Redis; it is refused like any outage, never admitted
and never retried (a retried admit would charge twice).

When Redis cannot be reached (connection refused or reset, timeout), the limiter
either fails closed (``on_error="fail_closed"``, the default: every request is refused
with 503 ``rate_limit_unavailable`` naming the backend; the client is not over a limit, so
not 429) or falls back to in-process buckets with the same limits (``on_error="local"``:
each replica then enforces the limits alone, so N replicas may together send up to N times
a venue's limit). Either way the first failure logs one error line, recovery logs one line,
and ``stats`` counts errors and degraded decisions. After a failure Redis is left alone for
``retry_interval_s`` so an outage does not add a timeout to every request.

Only connection and timeout errors mean "down". Any other Redis error (a script error, a
refused write such as OOM or a read-only replica) is that one decision's problem: it is
logged with its class, the decision fails closed (503), ``stats.script_errors`` counts it,
and the next request goes to Redis as usual. The scripts themselves never fail on bad data
(see ``PRELUDE``).

Cooldowns (a venue said "slow down") are also kept in this process, and every admit looks
at them before Redis: a cooldown recorded while Redis was down, or lost when Redis restarted
empty, still holds here; one recorded while Redis was down is written to Redis once it is
back, so the other replicas pause too.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections.abc import Sequence
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.clock import Clock, SystemClock
from proxy.policy.rules import RateSpec
from proxy.ratelimit.limiter import Bucket, LimiterStats, MemoryLimiter, Refusal, cooldown_name
from proxy.ratelimit.redis_pipe import Arg, RedisPipe, Script

log = logging.getLogger("signing_proxy.ratelimit")

OnError = Literal["fail_closed", "local"]
# The backend is down: connection refused/reset/lost, Redis still loading, no answer in time.
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
# Anything else Redis answers with (script error, OOM, READONLY, WRONGTYPE): one decision.
_FAILURES = (RedisError, OSError, TimeoutError)
_ERROR_LOG_INTERVAL_S = 10.0  # per error class: a persistent fault must not flood the log

# Shared by the scripts. A key that does not parse (another type, a non-numeric or
# non-finite field: an operator's mistake or a bug) counts as absent and is overwritten: one
# bad key must cost at most that bucket's state, never a script error for every client.
# Members go to ZADD in chunks: Lua's unpack() fails past a few thousand values.
PRELUDE = """
local function num(x) return string.format('%.17g', x) end  -- redis.call would print 14 digits
local function finite(x) return x ~= nil and x == x and x > -math.huge and x < math.huge end
local function typed(key, want)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= want and kind ~= 'none' then redis.call('DEL', key) end
end
local function tokens_in(key, cap, param, now)
  typed(key, 'hash')
  local v = redis.call('HMGET', key, 't', 's')
  local have, stamp = tonumber(v[1]), tonumber(v[2])
  if not (finite(have) and finite(stamp)) or have < 0 then return cap end
  if stamp > now then  -- the server clock stepped back: refill from now on
    stamp = now
    redis.call('HSET', key, 's', num(now))
  end
  return math.min(cap, have + (now - stamp) * param)
end
local function add_units(key, score, tag, n)
  local members = {}
  for i = 1, n do
    members[#members + 1] = score
    members[#members + 1] = tag .. i
    if #members >= 1000 then
      redis.call('ZADD', key, unpack(members))
      members = {}
    end
  end
  if #members > 0 then redis.call('ZADD', key, unpack(members)) end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: cooldown keys (ARGV[1] of them), then one key per bucket.
# ARGV: ncooldowns, nonce, then per bucket: kind ("t"|"w"), capacity, rate per µs | window µs, charge.
# Returns {1} when admitted, else {0, index of the refusing key (1-based), wait µs, reason}.
ADMIT = Script(
    PRELUDE
    + """
local ncool = tonumber(ARGV[1])
for i = 1, ncool do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > 0 then  -- any key with a TTL pauses, whatever its type: fail closed
    local reason = ''
    if redis.call('TYPE', KEYS[i])['ok'] == 'string' then reason = redis.call('GET', KEYS[i]) end
    return {0, i, ttl * 1000, reason}
  end
end
local tokens = {}
for j = 1, #KEYS - ncool do
  local key, base = KEYS[ncool + j], 2 + (j - 1) * 4
  local kind, cap = ARGV[base + 1], tonumber(ARGV[base + 2])
  local param, charge = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  if kind == 't' then
    local have = tokens_in(key, cap, param, now)
    if have < charge then
      return {0, ncool + j, math.ceil((charge - have) / param), ''}
    end
    tokens[j] = have
  else
    typed(key, 'zset')
    redis.call('ZREMRANGEBYSCORE', key, '-inf', num(now - param))
    local excess = redis.call('ZCARD', key) + charge - cap
    if excess > 0 then
      local oldest = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
      return {0, ncool + j, math.ceil(tonumber(oldest[2]) + param - now), ''}
    end
  end
end
for j = 1, #KEYS - ncool do
  local key, base = KEYS[ncool + j], 2 + (j - 1) * 4
  local kind, cap = ARGV[base + 1], tonumber(ARGV[base + 2])
  local param, charge = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  if kind == 't' then
    local left = tokens[j] - charge
    redis.call('HSET', key, 't', num(left), 's', num(now))
    redis.call('PEXPIRE', key, num(math.ceil((cap - left) / param / 1000) + 1000))
  else
    add_units(key, num(now), ARGV[2] .. ':' .. j .. ':', charge)
    redis.call('PEXPIRE', key, num(math.ceil(param / 1000) + 1000))
  end
end
return {1}
"""
)

# KEYS[1] cooldown key; ARGV: milliseconds, reason. Never shortens a running cooldown.
COOL_DOWN = Script("""
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
  return 1
end
return 0
""")

# KEYS[1] bucket key; ARGV: kind, capacity, rate per µs | window µs, available, nonce.
CLAMP = Script(
    PRELUDE
    + """
local kind, cap = ARGV[1], tonumber(ARGV[2])
local param, avail = tonumber(ARGV[3]), tonumber(ARGV[4])
if kind == 't' then
  local have = tokens_in(KEYS[1], cap, param, now)
  if have > avail then
    redis.call('HSET', KEYS[1], 't', num(avail), 's', num(now))
    redis.call('PEXPIRE', KEYS[1], num(math.ceil((cap - avail) / param / 1000) + 1000))
  end
  return 0
end
typed(KEYS[1], 'zset')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now - param))
local missing = cap - avail - redis.call('ZCARD', KEYS[1])
if missing > 0 then
  add_units(KEYS[1], num(now), ARGV[5] .. ':', missing)
  redis.call('PEXPIRE', KEYS[1], num(math.ceil(param / 1000) + 1000))
end
return 0
"""
)


def make_client(url: str, timeout_s: float = 0.5, max_connections: int = 64) -> aioredis.Redis:
    """A client that fails fast: no retries, bounded waits for a connection and a reply."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,  # waiting for a free pooled connection
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis(connection_pool=pool)


class RedisLimiter:
    def __init__(
        self,
        url: str,
        clock: Clock | None = None,
        *,
        key_prefix: str = "signing-proxy",
        timeout_s: float = 0.5,
        on_error: OnError = "fail_closed",
        retry_interval_s: float = 1.0,
    ) -> None:
        if not url:
            raise ValueError("RedisLimiter needs a url")
        self._redis = RedisPipe(url, timeout_s)
        self._clock = clock or SystemClock()
        self._prefix = "{" + key_prefix + "}:rl:"
        self._on_error = on_error
        self._retry_interval = retry_interval_s
        self._local = MemoryLimiter(self._clock)  # on_error="local", and every cooldown we set
        self._unsynced: dict[str, tuple[float, str]] = {}  # cooldowns Redis missed: (until, reason)
        self._error_logged: dict[str, float] = {}
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._nonce_prefix = secrets.token_hex(6)
        self._nonces = itertools.count()
        self.stats = LimiterStats()

    async def admit(
        self, buckets: Sequence[Bucket], cost: float = 1.0, cooldowns: Sequence[str] = ()
    ) -> Refusal | None:
        if self._unsynced and self._available():
            await self._push_cooldowns()  # Redis is back: the other replicas must pause too
        paused = self._local_pause(cooldowns)
        if paused is not None:
            if self._on_error == "local" and not self._available():
                return self._degraded(buckets, cost, cooldowns)  # refuses with the same pause
            # Written again (Redis may have restarted empty; COOL_DOWN never shortens), then
            # asked with no bucket, so nothing is taken: a longer pause another replica set wins.
            if self._available() and await self._write_cooldowns(paused[1]):
                shared = await self._decide([], cost, cooldowns)
                if shared is not None and shared.backend is None:
                    return shared
            return paused[0]
        if not self._available():
            return self._degraded(buckets, cost, cooldowns)
        return await self._decide(buckets, cost, cooldowns)

    def _local_pause(self, cooldowns: Sequence[str]) -> tuple[Refusal, dict[str, tuple[float, str]]] | None:
        """A pause this process recorded for one of ``cooldowns``: (its refusal, all of them)."""
        cooling = {key: found for key in cooldowns if (found := self._local.cooldown(key)) is not None}
        if not cooling:
            return None
        key, (left, reason) = next(iter(cooling.items()))
        return Refusal(cooldown_name(key, reason), left), cooling

    async def _decide(
        self, buckets: Sequence[Bucket], cost: float, cooldowns: Sequence[str]
    ) -> Refusal | None:
        keys = [self._prefix + "c:" + key for key in cooldowns]
        args: list[Any] = [len(cooldowns), self._nonce()]
        for bucket in buckets:
            keys.append(self._key(bucket))
            args.extend(_bucket_args(bucket, min(bucket.cost * cost, bucket.capacity)))
        try:
            result = await self._redis.script(ADMIT, keys, args)
        except _DOWN as exc:
            self._failed(exc)
            return self._degraded(buckets, cost, cooldowns)
        except _FAILURES as exc:
            return self._decision_failed("admit", exc)
        self._succeeded()
        if result[0] == 1:
            return None
        index, wait_us = int(result[1]), float(result[2])
        if index <= len(cooldowns):
            reason = result[3].decode() if isinstance(result[3], bytes) else str(result[3])
            return Refusal(cooldown_name(cooldowns[index - 1], reason), wait_us / 1e6)
        return Refusal(buckets[index - len(cooldowns) - 1].name, wait_us / 1e6)

    async def cool_down(self, key: str, seconds: float, reason: str) -> None:
        self.stats.cooldowns += 1
        await self._local.cool_down(key, seconds, reason)  # holds here whatever Redis does
        self._local.stats.cooldowns -= 1  # counted once, above
        if self._available():
            try:
                await self._redis.script(COOL_DOWN, [self._prefix + "c:" + key], [_ms(seconds), reason])
                self._succeeded()
                return
            except _DOWN as exc:
                self._failed(exc)
            except _FAILURES as exc:
                self._decision_failed("cool_down", exc)
        until = self._clock.monotonic() + seconds
        known = self._unsynced.get(key)
        if known is None or known[0] < until:
            self._unsynced[key] = (until, reason)  # written to Redis once it answers

    async def clamp(self, bucket: Bucket, available: float) -> None:
        if not self._available():
            await self._local.clamp(bucket, available)
            return
        kind, capacity, param, _ = _bucket_args(bucket, 0)
        units = max(available, 0.0) if kind == "t" else max(math.floor(available), 0)
        try:
            args: list[Arg] = [kind, capacity, param, units, self._nonce()]
            await self._redis.script(CLAMP, [self._key(bucket)], args)
            self._succeeded()
        except _DOWN as exc:
            self._failed(exc)
        except _FAILURES as exc:
            self._decision_failed("clamp", exc)

    async def _push_cooldowns(self) -> None:
        """Write the cooldowns recorded while Redis was down (what is left of them)."""
        now = self._clock.monotonic()
        pending = {key: (until - now, reason) for key, (until, reason) in self._unsynced.items()}
        if await self._write_cooldowns({key: v for key, v in pending.items() if v[0] > 0}):
            self._unsynced.clear()

    async def _write_cooldowns(self, cooling: dict[str, tuple[float, str]]) -> bool:
        """``COOL_DOWN`` for each ``key: (seconds left, reason)``; False when Redis failed."""
        try:
            for key, (left, reason) in cooling.items():
                await self._redis.script(COOL_DOWN, [self._prefix + "c:" + key], [_ms(left), reason])
        except _DOWN as exc:
            self._failed(exc)
            return False
        except _FAILURES as exc:
            self._decision_failed("cool_down", exc)
            return False
        self._succeeded()
        return True

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.call("PING") == b"PONG")
        except _FAILURES:
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    # --- degraded mode ----------------------------------------------------------------

    def _available(self) -> bool:
        return self._down_since is None or self._clock.monotonic() >= self._retry_at

    def _degraded(self, buckets: Sequence[Bucket], cost: float, cooldowns: Sequence[str]) -> Refusal | None:
        if self._on_error == "local":
            self.stats.local_fallbacks += 1
            return self._local.admit_now(buckets, cost, cooldowns)
        self.stats.failed_closed += 1
        return Refusal(
            "rate-limit backend (redis) unreachable: failing closed", self._retry_interval, False, "redis"
        )

    def _decision_failed(self, operation: str, exc: BaseException) -> Refusal:
        """A Redis error that is not an outage: this decision fails closed, Redis stays up."""
        self.stats.script_errors += 1
        error = type(exc).__name__
        now = self._clock.monotonic()
        if now >= self._error_logged.get(error, -math.inf):
            self._error_logged[error] = now + _ERROR_LOG_INTERVAL_S
            log.error(
                "rate-limit backend redis refused a script: failing this decision closed",
                extra={"backend": "redis", "error": error, "operation": operation},
            )
        detail = f"redis answered {error} to this decision: failing closed"
        return Refusal(detail, self._retry_interval, False, backend="redis")

    def _failed(self, exc: BaseException) -> None:
        self.stats.backend_errors += 1
        now = self._clock.monotonic()
        self._retry_at = now + self._retry_interval
        if self._down_since is None:
            self._down_since = now
            mode = "using local buckets" if self._on_error == "local" else "failing closed"
            log.error(
                f"rate-limit backend redis unreachable: {mode}",
                extra={"backend": "redis", "error": type(exc).__name__, "on_error": self._on_error},
            )

    def _succeeded(self) -> None:
        if self._down_since is not None:
            down_s = round(self._clock.monotonic() - self._down_since, 3)
            self._down_since = None
            log.warning(
                "rate-limit backend redis reachable again", extra={"backend": "redis", "down_s": down_s}
            )

    def _key(self, bucket: Bucket) -> str:
        return self._prefix + ("t:" if isinstance(bucket.spec, RateSpec) else "w:") + bucket.name

    def _nonce(self) -> str:
        return f"{self._nonce_prefix}{next(self._nonces):x}"


def _bucket_args(bucket: Bucket, charge: float) -> tuple[str, float, float, float]:
    spec = bucket.spec
    if isinstance(spec, RateSpec):
        return "t", float(spec.burst), spec.per_second / 1e6, float(charge)
    return "w", float(spec.limit), spec.window_s * 1e6, float(math.ceil(charge))


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
