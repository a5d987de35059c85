"""The forwarding client on real sockets (``proxy.forward`` over ``proxy.http1``): what it
reads from a venue, what it reuses, when it gives up, and that it never sends twice.

The venue is ``ScriptedVenue``: raw bytes in, raw bytes out, every request recorded whole
and every connection counted, so each expectation below is a literal of the wire.
"""

from __future__ import annotations

import asyncio

import pytest

from proxy.clock import FakeClock
from proxy.errors import BadRequest, UpstreamTimeout, UpstreamUnreachable
from proxy.forward import Forwarder
from proxy.http1.client import Client
from proxy.messages import OutgoingRequest
from tests.integration.faultserver import (
    HOLD,
    Answer,
    FaultServer,
    LocalCA,
    ScriptedVenue,
    self_signed_context,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SECRET = "s3cr3t-marker"  # in the target, a header and the body: no error may quote it
GET = OutgoingRequest("GET", f"/v2/x?sig={SECRET}", (("x-coinex-signature", SECRET),), b"")
POST = OutgoingRequest("POST", f"/v2/order?sig={SECRET}", (("x-coinex-signature", SECRET),), SECRET.encode())


async def _venue(*answers: Answer | bytes, ssl_context=None) -> ScriptedVenue:
    return await ScriptedVenue(list(answers), ssl_context).start()


def _names_no_request(error: Exception) -> None:
    assert SECRET not in str(error) and "/v2/" not in str(error)


async def _run(venue: ScriptedVenue, *requests: OutgoingRequest, **options):
    """Send ``requests`` one after another; each reply, or the proxy error it raised."""
    forwarder = Forwarder(**{"connect_timeout_s": 2, "timeout_s": 5, **options})
    results: list = []
    try:
        for request in requests:
            try:
                results.append(await forwarder.send(venue.url, request))
            except (UpstreamUnreachable, UpstreamTimeout, BadRequest) as exc:
                _names_no_request(exc)
                results.append(exc)
    finally:
        await forwarder.close()
        await venue.stop()
    return results


# --- the request -------------------------------------------------------------------------


async def test_the_venue_reads_exactly_our_request_over_ipv6() -> None:
    venue = await ScriptedVenue([OK, OK]).start("::1")
    assert venue.url.startswith("http://[::1]:")
    (get, post) = await _run(venue, GET, POST)
    assert get.status == post.status == 200
    host = f"[::1]:{venue.port}".encode()
    assert [s.head for s in venue.seen] == [
        b"GET /v2/x?sig=s3cr3t-marker HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"x-coinex-signature: s3cr3t-marker\r\n\r\n",
        b"POST /v2/order?sig=s3cr3t-marker HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"x-coinex-signature: s3cr3t-marker\r\nContent-Length: 13\r\n\r\n",
    ]
    assert venue.seen[1].body == SECRET.encode()


@pytest.mark.parametrize(
    "request_",
    [
        OutgoingRequest("GET", f"/v2/x?a={SECRET}\r\nX-Injected: 1", ()),
        OutgoingRequest("GET", f"/v2/x {SECRET}", ()),
        OutgoingRequest("GET", "/v2/x", (("x-a", f"{SECRET}\r\nX-Injected: 1"),)),
        OutgoingRequest("GET", "/v2/x", ((f"x-{SECRET} a", "v"),)),
        OutgoingRequest("POST", "/v2/x", (("content-length", "0"),), b"{}"),
    ],
    ids=["crlf-target", "space-target", "crlf-value", "space-name", "own-content-length"],
)
async def test_a_request_http11_cannot_carry_is_refused_before_connecting(request_: OutgoingRequest) -> None:
    venue = await _venue(OK)
    (result,) = await _run(venue, request_)
    assert isinstance(result, BadRequest)
    assert venue.accepted == 0 and venue.seen == []


# --- the answer --------------------------------------------------------------------------


async def test_chunked_answer_is_dechunked_with_trailers_dropped_and_headers_as_sent() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nX-Venue: Caf\xe9  \r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    venue = await _venue(chunked, OK)
    first, second = await _run(venue, GET, GET)
    assert (first.status, first.body) == (200, b"abcde")
    assert first.headers == (("x-venue", "Caf\xe9"), ("transfer-encoding", "chunked"))
    assert second.body == b"ok" and venue.accepted == 1  # read whole: the connection was reused


async def test_interim_answers_are_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    venue = await _venue(interim + OK)
    (reply,) = await _run(venue, POST)
    assert (reply.status, reply.headers, reply.body) == (200, (("content-length", "2"),), b"ok")


async def test_an_unasked_upgrade_is_a_failure() -> None:
    venue = await _venue(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    )
    (result,) = await _run(venue, GET)
    assert isinstance(result, UpstreamUnreachable) and "UnexpectedUpgrade" in str(result)


async def test_head_answer_ends_with_its_head_and_its_connection_is_closed() -> None:
    venue = await _venue(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", OK)
    head, get = await _run(venue, OutgoingRequest("HEAD", "/v2/x"), GET)
    assert (head.status, head.body) == (200, b"")  # not a timeout waiting for 10 bytes
    assert get.body == b"ok"
    assert venue.accepted == 2 and [s.connection for s in venue.seen] == [1, 2]


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
async def test_no_body_statuses_end_at_their_head_and_keep_the_connection(status: bytes) -> None:
    venue = await _venue(b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\n", OK)
    first, second = await _run(venue, GET, GET)
    assert first.body == b"" and second.body == b"ok"
    assert venue.accepted == 1


async def test_content_encoding_is_relayed_undecoded() -> None:
    gzip_body = bytes.fromhex("1f8b08000000000000ff4bcbcf07002165738c03000000")  # gzip of "foo"
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 23\r\n\r\n" + gzip_body
    venue = await _venue(answer)
    (reply,) = await _run(venue, GET)
    assert reply.body == gzip_body and ("content-encoding", "gzip") in reply.headers


async def test_an_answer_without_length_is_read_until_the_venue_closes() -> None:
    venue = await _venue(Answer(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", then_close=True), OK)
    first, second = await _run(venue, GET, GET)
    assert first.body == b"until the end" and second.body == b"ok"
    assert venue.accepted == 2


async def test_a_body_cut_short_by_the_venue_is_a_failure() -> None:
    venue = await _venue(Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", then_close=True))
    (result,) = await _run(venue, POST)
    assert isinstance(result, UpstreamUnreachable) and "ServerDisconnected" in str(result)
    assert len(venue.seen) == 1


@pytest.mark.parametrize(
    ("header_bytes", "ok"), [(60 * 1024, True), (70 * 1024, False)], ids=["60KiB", "70KiB"]
)
async def test_the_answer_head_is_bounded_at_64_kib(header_bytes: int, ok: bool) -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * header_bytes + b"\r\nContent-Length: 2\r\n\r\nok"
    venue = await _venue(answer)
    (result,) = await _run(venue, GET)
    if ok:
        assert result.status == 200
    else:
        assert isinstance(result, UpstreamUnreachable) and "65536 bytes" in str(result)
        await venue.wait_closed(1)  # dropped


async def test_an_endless_head_fails_at_the_bound_not_at_the_deadline() -> None:
    never_ends = asyncio.get_running_loop().create_future()
    venue = await _venue(Answer(never_ends))
    never_ends.set_result(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (80 * 1024))  # no end of line, ever
    (result,) = await _run(venue, GET, timeout_s=60)
    assert isinstance(result, UpstreamUnreachable) and "65536 bytes" in str(result)


CAP = 100


@pytest.mark.parametrize(
    ("answer", "over"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", True),  # declared: not even read
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + b"x" * 101 + b"\r\n0\r\n\r\n",
            True,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100, False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + b"x" * 100 + b"\r\n0\r\n\r\n",
            False,
        ),
    ],
    ids=["declared-over", "chunked-over", "declared-at", "chunked-at"],
)
async def test_the_answer_body_is_capped(answer: bytes, over: bool) -> None:
    venue = await _venue(answer)
    (result,) = await _run(venue, GET, max_response_bytes=CAP)
    if over:
        assert isinstance(result, UpstreamUnreachable)
        assert str(result) == (
            f"the answer from {venue.url} exceeds upstream.max_response_bytes (100 bytes); "
            "the request may have been executed"
        )
        await venue.wait_closed(1)
    else:
        assert result.body == b"x" * 100


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_a_connection_is_reused_only_when_http11_keep_alive_allows(answer: bytes) -> None:
    venue = await _venue(answer, OK)
    first, second = await _run(venue, GET, GET)
    assert first.body == second.body == b"ok"
    assert venue.accepted == 2


# --- exactly once ------------------------------------------------------------------------


async def _idle_connection_ended(forwarder: Forwarder) -> None:
    """Until the client has seen the venue end its one idle connection (a FIN, or stray bytes
    it answers with an abort): loopback delivers it at once, the loop may take a few turns;
    bounded at 5 s so a broken client fails the test instead of hanging it."""
    client = forwarder._client
    assert client is not None
    for _ in range(500):
        if client.open_connections == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the client never saw its idle connection end")


@pytest.mark.parametrize("after", ["closed", "noise"])
async def test_a_pooled_connection_the_venue_closed_or_wrote_to_while_idle_is_not_picked(after: str) -> None:
    noise = asyncio.get_running_loop().create_future()  # written once the client holds the answer
    answer = Answer(OK, then_close=True) if after == "closed" else Answer(OK, then_send=noise)
    venue = await _venue(answer, OK)
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5)
    try:
        assert (await forwarder.send(venue.url, GET)).status == 200
        if after == "closed":
            await venue.wait_closed(1)
        else:
            noise.set_result(b"HTTP/1.1 200 OK\r\n")  # on the idle connection, nothing asked
        await _idle_connection_ended(forwarder)
        reply = await forwarder.send(venue.url, POST)
    finally:
        await forwarder.close()
        await venue.stop()
    assert reply.status == 200  # not a 502 from writing on a dead connection
    assert [(s.connection, s.head.split(b" ")[0]) for s in venue.seen] == [(1, b"GET"), (2, b"POST")]


@pytest.mark.parametrize(
    ("method", "retries"), [("GET", True), ("HEAD", True), ("POST", False), ("DELETE", False)]
)
async def test_retry_idempotent_retries_only_a_get_or_head_that_never_connected(
    method: str, retries: bool
) -> None:
    venue = ScriptedVenue()
    venue.accept_and_close = True  # the TLS handshake fails: nothing is ever written
    await venue.start()
    https = venue.url.replace("http://", "https://")
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5, retry_idempotent=True)
    try:
        with pytest.raises(UpstreamUnreachable) as caught:
            await forwarder.send(https, OutgoingRequest(method, "/v2/x"))
    finally:
        await forwarder.close()
        await venue.stop()
    assert str(caught.value).startswith(f"cannot connect to {https} (")
    assert venue.accepted == (2 if retries else 1)


async def test_without_retry_idempotent_a_failed_connect_is_not_retried() -> None:
    venue = ScriptedVenue()
    venue.accept_and_close = True
    await venue.start()
    https = venue.url.replace("http://", "https://")
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5)
    try:
        with pytest.raises(UpstreamUnreachable):
            await forwarder.send(https, GET)
    finally:
        await forwarder.close()
        await venue.stop()
    assert venue.accepted == 1


# --- timeouts ----------------------------------------------------------------------------


async def test_a_tls_handshake_that_never_ends_is_a_connect_failure_under_connect_timeout() -> None:
    venue = await _venue()  # reads the ClientHello as the start of a request head, forever
    https = venue.url.replace("http://", "https://")
    forwarder = Forwarder(connect_timeout_s=0.2, timeout_s=30)
    try:
        with pytest.raises(UpstreamUnreachable) as caught:
            await forwarder.send(https, GET)
    finally:
        await forwarder.close()
        await venue.stop()
    assert str(caught.value) == f"cannot connect to {https} (ConnectTimeout)"


async def test_an_unanswered_request_times_out_and_its_connection_is_dropped() -> None:
    venue = await _venue(HOLD, OK)
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=0.3)
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await forwarder.send(venue.url, POST)
        await venue.wait_closed(1)  # closed by us, never pooled
        reply = await forwarder.send(venue.url, GET)
    finally:
        await forwarder.close()
        await venue.stop()
    assert str(caught.value) == f"{venue.url} did not answer in time"
    assert reply.status == 200 and venue.accepted == 2


async def test_waiting_for_a_pool_slot_counts_in_the_deadline() -> None:
    venue = await _venue()  # holds every request
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=0.3, max_connections=1)
    try:
        results = await asyncio.gather(
            forwarder.send(venue.url, POST), forwarder.send(venue.url, POST), return_exceptions=True
        )
    finally:
        await forwarder.close()
        await venue.stop()
    assert [type(r) for r in results] == [UpstreamTimeout, UpstreamTimeout]
    assert venue.accepted == 1 and len(venue.seen) == 1  # the second never got a connection


# --- the pool ----------------------------------------------------------------------------


async def test_idle_connections_are_reused_last_in_first_out() -> None:
    loop = asyncio.get_running_loop()
    second_answer = loop.create_future()
    venue = await _venue(OK, Answer(second_answer), OK)
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5)
    try:
        first = asyncio.ensure_future(forwarder.send(venue.url, GET))
        second = asyncio.ensure_future(forwarder.send(venue.url, GET))
        await first  # connection 1 back in the pool first
        second_answer.set_result(OK)
        await second  # then connection 2
        await forwarder.send(venue.url, GET)
    finally:
        await forwarder.close()
        await venue.stop()
    assert sorted(s.connection for s in venue.seen[:2]) == [1, 2]
    assert venue.seen[2].connection == venue.seen[1].connection  # the last one back is the first out


async def test_open_connections_are_bounded_and_excess_requests_wait() -> None:
    loop = asyncio.get_running_loop()
    held = [loop.create_future(), loop.create_future()]
    venue = await _venue(Answer(held[0]), Answer(held[1]), OK)
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5, max_connections=2)
    try:
        sends = [asyncio.ensure_future(forwarder.send(venue.url, GET)) for _ in range(3)]
        while len(venue.seen) < 2:
            await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        assert venue.accepted == 2 and not sends[2].done()  # the third waits for a slot
        for future in held:
            future.set_result(OK)
        replies = await asyncio.gather(*sends)
    finally:
        await forwarder.close()
        await venue.stop()
    assert [r.status for r in replies] == [200, 200, 200]
    assert venue.accepted == 2


async def test_a_full_pool_closes_another_origin_idle_connection_to_connect() -> None:
    a, b = await _venue(OK), await _venue(OK)
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5, max_connections=1)
    try:
        assert (await forwarder.send(a.url, GET)).status == 200
        assert (await forwarder.send(b.url, GET)).status == 200
        await a.wait_closed(1)
    finally:
        await forwarder.close()
        await a.stop()
        await b.stop()


async def test_an_idle_connection_is_reused_for_15_seconds_and_no_longer() -> None:
    clock = FakeClock()
    venue = await _venue(OK, OK, OK)
    client = Client(
        max_connections=10, connect_timeout_s=2, max_response_bytes=CAP, monotonic=clock.monotonic
    )
    try:
        await client.request(venue.url, "GET", "/", (), b"")
        clock.advance(15)
        await client.request(venue.url, "GET", "/", (), b"")
        assert venue.accepted == 1
        clock.advance(15.001)
        await client.request(venue.url, "GET", "/", (), b"")
        await venue.wait_closed(1)  # the expired one is closed, not left open
    finally:
        client.close()
        await venue.stop()
    assert [s.connection for s in venue.seen] == [1, 1, 2]


async def test_close_closes_every_connection() -> None:
    venue = await _venue(OK, HOLD, OK)
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5)
    try:
        await forwarder.send(venue.url, GET)  # connection 1, then idle
        pending = asyncio.ensure_future(forwarder.send(venue.url, POST))  # on connection 1, held
        while len(venue.seen) < 2:
            await asyncio.sleep(0)
        await forwarder.send(venue.url, GET)  # connection 2, then idle
        await forwarder.close()
        await venue.wait_closed(1)
        await venue.wait_closed(2)
        with pytest.raises(UpstreamUnreachable):
            await pending
    finally:
        await forwarder.close()
        await venue.stop()
    assert [s.connection for s in venue.seen] == [1, 1, 2]


# --- TLS ---------------------------------------------------------------------------------


async def test_tls_to_a_trusted_certificate() -> None:
    ca = LocalCA()
    venue = await _venue(OK, OK, ssl_context=ca.server_context())
    assert venue.url.startswith("https://127.0.0.1:")
    first, second = await _run(venue, GET, POST, ssl_context=ca.client_context())
    assert first.status == second.status == 200 and venue.accepted == 1
    assert venue.seen[1].body == SECRET.encode()


@pytest.mark.parametrize("trusting", ["system", "another-ca"])
async def test_tls_to_an_untrusted_certificate_sends_nothing(trusting: str) -> None:
    venue = await FaultServer(self_signed_context()).start()
    context = None if trusting == "system" else LocalCA().client_context()
    forwarder = Forwarder(connect_timeout_s=2, timeout_s=5, ssl_context=context)
    try:
        with pytest.raises(UpstreamUnreachable) as caught:
            await forwarder.send(venue.url, POST)
    finally:
        await forwarder.close()
        await venue.stop()
    assert str(caught.value) == f"cannot connect to {venue.url} (SSLCertVerificationError)"
    assert venue.requests == 0


# --- uvloop ------------------------------------------------------------------------------


def test_the_client_runs_on_uvloop_as_serve_does() -> None:
    """``serve`` runs on uvloop (the tests above on asyncio's own loop): its transports,
    TLS and ``create_connection`` must do the same, idle-close detection included."""
    import uvloop

    async def scenario() -> list[int]:
        ca = LocalCA()
        plain = await _venue(
            Answer(OK, then_close=True), OK, Answer(b"HTTP/1.1 200 OK\r\n\r\nuntil close", then_close=True)
        )
        tls = await _venue(
            OK, Answer(b"HTTP/1.1 200 OK\r\n\r\nbye", then_close=True), ssl_context=ca.server_context()
        )
        forwarder = Forwarder(connect_timeout_s=2, timeout_s=5, ssl_context=ca.client_context())
        try:
            statuses = [(await forwarder.send(plain.url, GET)).status]
            await plain.wait_closed(1)
            await _idle_connection_ended(forwarder)
            statuses.append((await forwarder.send(plain.url, POST)).status)
            until_close = await forwarder.send(plain.url, GET)
            assert until_close.body == b"until close"
            statuses.append((await forwarder.send(tls.url, GET)).status)
            bye = await forwarder.send(tls.url, GET)
            assert bye.body == b"bye" and tls.accepted == 1
        finally:
            await forwarder.close()
            await plain.stop()
            await tls.stop()
        assert [s.connection for s in plain.seen] == [1, 2, 2]
        return statuses

    assert uvloop.run(scenario()) == [200, 200, 200]
