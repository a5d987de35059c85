"""Misbehaving upstreams for fault tests.

``FaultServer`` reads one request, then does what ``mode`` says. The keep-alive modes
(``KEEP_ALIVE``) answer the first request on a connection and keep it open; every later
request on that connection is read whole, then the connection is closed unanswered: the
venue dropped a reused connection after the request reached it. ``seen`` holds every
request line read, in order. ``FaultServer(self_signed_context())`` speaks TLS with a
certificate nobody trusts (the proxy must refuse it); ``LocalCA`` makes a CA a test can
trust. ``ScriptedVenue`` answers each request with the bytes a test gives it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OK = b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{"code": 0}'
UNAUTHORIZED = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 26\r\nContent-Type: application/json\r\n\r\n"
    b'{"error": "token expired"}'
)
KEEP_ALIVE = {"drop_on_reuse": OK, "unauthorized_then_drop": UNAUTHORIZED}


class FaultServer:
    MODES = ("ok", "reset_mid_response", "garbage", "close_without_answer", "never_answer", *KEEP_ALIVE)

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.mode = "ok"
        self.requests = 0
        self.seen: list[bytes] = []  # request lines, in the order they were read
        self.port = 0
        self._ssl = ssl_context
        self._server: asyncio.base_events.Server | None = None
        self._idle: set[asyncio.StreamWriter] = set()  # keep-alive connections waiting for a reuse

    async def start(self) -> FaultServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode in KEEP_ALIVE:
            await self._keep_alive(reader, writer, KEEP_ALIVE[self.mode])
            return
        if not await self._read_request(reader, writer):
            return
        with contextlib.suppress(ConnectionError):
            await self._answer(reader, writer)

    async def _keep_alive(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        if not await self._read_request(reader, writer):
            return
        with contextlib.suppress(ConnectionError):
            writer.write(first)
            await writer.drain()
            self._idle.add(writer)
            try:
                if await self._read_request(reader, writer):  # the reused connection: read, then drop
                    writer.close()
            finally:
                self._idle.discard(writer)

    def close_idle(self) -> None:
        """Hang up every kept-alive connection, so no later test reuses one by surprise."""
        for writer in list(self._idle):
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
            writer.close()
            return False
        self.requests += 1
        self.seen.append(head.split(b"\r\n", 1)[0])
        return True

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset_mid_response":
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"partial":')
            await writer.drain()
            writer.transport.abort()
            return
        if self.mode == "never_answer":  # until the proxy gives up and hangs up
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(), 30)
        elif self.mode == "ok":
            writer.write(OK)
        elif self.mode == "garbage":
            writer.write(b"\x00\x01SSH-2.0-definitely-not-http\r\n\r\n")
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class LocalCA:
    """A throwaway certificate authority: ``server_context`` serves a certificate it signed
    for ``localhost``, ``127.0.0.1`` and ``::1``; ``client_context`` trusts it (and nothing
    else). Another ``LocalCA`` is a CA nobody trusts."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signing-proxy test CA")])
        self.cert = (
            _builder(name, name, self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def server_context(self) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        sans = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        ca_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())
        cert = (
            _builder(subject, self.cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(ca_key_id, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_path.write_bytes(_pem(cert) + _pem(self.cert))
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_path, key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=_pem(self.cert).decode("ascii"))


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def self_signed_context() -> ssl.SSLContext:
    """A server context whose certificate chains to a CA nobody trusts."""
    return LocalCA().server_context()


@dataclasses.dataclass(frozen=True)
class Answer:
    """What ``ScriptedVenue`` does with one request: write ``data`` (raw bytes, or a future
    the test resolves to them later), then close the connection if ``then_close``, or write
    ``then_send`` (unsolicited bytes on the now idle connection; a future: once it resolves)."""

    data: bytes | asyncio.Future[bytes] = b""
    then_close: bool = False
    then_send: bytes | asyncio.Future[bytes] = b""


HOLD = Answer(b"")  # never answered: the venue reads until the client hangs up


@dataclasses.dataclass
class Seen:
    connection: int  # 1 for the first connection accepted, 2 for the next, ...
    head: bytes  # request line and headers, final CRLF CRLF included
    body: bytes


class ScriptedVenue:
    """A raw venue: answers request *n* (over all connections, in the order read) with
    ``answers[n]`` (``Answer``, or bytes: written, connection kept open), holds ``HOLD`` and
    requests past the script (never answered). Records every request whole (``seen``), how many
    connections it accepted (``accepted``) and which of them the client closed (``closed``;
    ``wait_closed(n)`` returns once connection ``n`` is closed). ``accept_and_close``: close
    every connection as soon as it is accepted (a TLS handshake then fails)."""

    def __init__(
        self, answers: list[Answer | bytes] | None = None, ssl_context: ssl.SSLContext | None = None
    ):
        self.answers = list(answers or [])
        self.seen: list[Seen] = []
        self.accepted = 0
        self.closed: set[int] = set()
        self.accept_and_close = False
        self._closed_events: dict[int, asyncio.Event] = {}
        self._ssl = ssl_context
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1") -> ScriptedVenue:
        self._server = await asyncio.start_server(self._handle, host, 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        self._host = f"[{host}]" if ":" in host else host
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self._host}:{self.port}"

    async def wait_closed(self, connection: int) -> None:
        await self._event(connection).wait()

    def _event(self, connection: int) -> asyncio.Event:
        return self._closed_events.setdefault(connection, asyncio.Event())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        connection = self.accepted
        self._writers.add(writer)
        try:
            if not self.accept_and_close:
                await self._serve(connection, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self.closed.add(connection)
            self._event(connection).set()

    async def _serve(
        self, connection: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed the connection
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            self.seen.append(Seen(connection, head, await reader.readexactly(length)))
            index = len(self.seen) - 1
            answer = self.answers[index] if index < len(self.answers) else None
            if answer is None or answer is HOLD:
                await reader.read()  # held: until the client hangs up
                return
            if isinstance(answer, bytes):
                answer = Answer(answer)
            data = answer.data if isinstance(answer.data, bytes) else await answer.data
            writer.write(data)
            await writer.drain()
            if answer.then_close:
                return
            if answer.then_send:
                noise = answer.then_send if isinstance(answer.then_send, bytes) else await answer.then_send
                writer.write(noise)
                await writer.drain()

    async def stop(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
