"""Misbehaving upstreams for fault tests.

``FaultServer`` reads one request, then does what ``mode`` says. The keep-alive modes
(``KEEP_ALIVE``) answer the first request on a connection and keep it open; every later
request on that connection is read whole, then the connection is closed unanswered: the
venue dropped a reused connection after the request reached it. ``seen`` holds every
request line read, in order. ``SelfSignedTLSServer``
speaks TLS with a certificate nobody trusts (the proxy must refuse it)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def self_signed_context() -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
    return context
