"""A small HTTP/1.1 load generator: raw asyncio sockets on uvloop, httptools for responses.

``python -m benchmarks.loadgen --port P --request '<json>' (--rate R | --connections C)``
prints one ``LOADGEN_JSON {...}`` line. Two modes:

* **fixed rate (open loop)**: request *i* is started at ``start + i / rate`` whatever the
  server does, on an idle keep-alive connection (a new one is opened when none is idle),
  so a slow server cannot slow the generator down (no coordinated omission). Latency is
  measured from the moment the request is written; ``lag_p99_ms`` says how late the sends
  were against the schedule (the generator keeping up).
* **fixed concurrency (closed loop)**: C connections each send the next request as soon as
  the previous answer is complete, like wrk. Used when wrk is not installed.

The request bytes are built once; per request the generator writes them and parses the
answer's status line, headers and body, nothing else (``run --self-check`` measures its
ceiling against the venue stand-in: far above the 300 req/s the open loop asks for).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import uvloop

from benchmarks.configs import RequestSpec

MARKER = "LOADGEN_JSON"
MAX_OPEN_LOOP_CONNECTIONS = 512


def raw_request(spec: RequestSpec, host: str) -> bytes:
    lines = [f"{spec.method} {spec.path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in spec.headers]
    if spec.body or spec.method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(spec.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + spec.body


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[int] | None = None
        self._transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.closed = True
            assert self._transport is not None
            self._transport.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def request(self, raw: bytes) -> int:
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def connect(port: int) -> Connection:
    _transport, protocol = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", port)
    return protocol


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds
    lags: list[float] = field(default_factory=list)  # seconds late against the schedule
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    connections: int = 0

    def summary(self, mode: str, elapsed: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return {
            "mode": mode,
            "tool": "python",
            "requests": len(ordered),
            "duration_s": round(elapsed, 3),
            "rps": round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": _ms(percentile(ordered, 50)),
            "p90_ms": _ms(percentile(ordered, 90)),
            "p99_ms": _ms(percentile(ordered, 99)),
            "max_ms": _ms(ordered[-1] if ordered else 0.0),
            "errors": self.errors + len(ordered) - ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "connections": self.connections,
            "lag_p99_ms": _ms(percentile(sorted(self.lags), 99)),
        }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def closed_loop(port: int, raw: bytes, connections: int, duration_s: float) -> dict[str, Any]:
    stats = Stats()
    started = time.perf_counter()
    deadline = started + duration_s
    await asyncio.gather(*(_closed_worker(port, raw, deadline, stats) for _ in range(connections)))
    return stats.summary("fixed-concurrency", time.perf_counter() - started)


async def _closed_worker(port: int, raw: bytes, deadline: float, stats: Stats) -> None:
    conn: Connection | None = None
    while (sent := time.perf_counter()) < deadline:
        if conn is None or conn.closed:
            conn = await connect(port)
            stats.connections += 1
            continue
        try:
            status = await conn.request(raw)
        except ConnectionError:
            stats.errors += 1
            conn = None
            continue
        stats.latencies.append(time.perf_counter() - sent)
        stats.statuses[status] += 1
    if conn is not None:
        conn.close()


async def open_loop(
    port: int, raw: bytes, rate: float, duration_s: float, connections: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    idle: deque[Connection] = deque([await connect(port) for _ in range(connections)])
    stats.connections = connections
    for conn in idle:  # untimed: first use of each connection and of this code
        await conn.request(raw)
    pending: set[asyncio.Task[None]] = set()
    start = loop.time() + 0.01
    started = time.perf_counter()
    for i in range(int(rate * duration_s)):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        stats.lags.append(max(0.0, loop.time() - due))
        if idle:
            conn = idle.popleft()
        elif stats.connections < MAX_OPEN_LOOP_CONNECTIONS:
            conn = await connect(port)
            stats.connections += 1
        else:
            stats.errors += 1  # the server is hopelessly behind; count it, do not pile on
            continue
        task = asyncio.create_task(_one(conn, raw, stats, idle))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return stats.summary("fixed-rate", elapsed)


async def _one(conn: Connection, raw: bytes, stats: Stats, idle: deque[Connection]) -> None:
    sent = time.perf_counter()
    try:
        status = await conn.request(raw)
    except ConnectionError:
        stats.errors += 1
        return
    stats.latencies.append(time.perf_counter() - sent)
    stats.statuses[status] += 1
    if not conn.closed:
        idle.append(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP/1.1 load generator (prints one JSON line)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--request", required=True, help="RequestSpec as JSON")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, help="fixed rate in req/s (open loop); else closed loop")
    args = parser.parse_args()
    raw = raw_request(RequestSpec.from_json(json.loads(args.request)), f"127.0.0.1:{args.port}")
    gc.disable()  # a collection pause would show up as server latency; this process is short-lived
    if args.rate:
        work = open_loop(args.port, raw, args.rate, args.duration, args.connections)
    else:
        work = closed_loop(args.port, raw, args.connections, args.duration)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(work)
    print(MARKER, json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
