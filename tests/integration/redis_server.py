"""A private ``redis-server`` for tests: free port, loopback only, no persistence.

The shared rate limits are tested against the real server (DESIGN.md: Redis is a real
component the test setup starts). ``kill`` stops it the hard way mid-test, ``restart``
brings it back on the same port. CI installs the Debian package ``redis-server``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

from proxy.dev.devvault import free_port

_START_TIMEOUT_S = 20.0


def redis_binary() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(found):
        raise RuntimeError("redis-server not found: install the 'redis-server' package (apt-get)")
    return found


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="signing-proxy-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--logfile", "",
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._pong():
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer PING")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as in a crash."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._dir.cleanup()


class RedisRelay:
    """A TCP relay in front of a real ``redis-server`` that can misdeliver Redis's replies.

    ``mode``: ``"pass"`` relays both ways; ``"hold"`` keeps Redis's replies until
    ``release()``; ``"drop"`` closes the client's connection when Redis's next reply
    arrives, without relaying it (Redis ran the command, its answer is lost), then relays
    again (``mode`` is back to ``"pass"``), so a client that resends would succeed. ``sent`` holds
    every byte the client wrote, ``connections`` counts the connections it opened.
    """

    def __init__(self, redis_port: int) -> None:
        self.mode = "pass"
        self.sent = bytearray()
        self.connections = 0
        self.port = 0
        self._redis_port = redis_port
        self._released = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def commands(self, name: bytes) -> int:
        """How many commands ``name`` the client sent (RESP bulk string ``$<len>\\r\\n<name>\\r\\n``)."""
        return self.sent.count(b"$%d\r\n%s\r\n" % (len(name), name))

    def release(self) -> None:
        self._released.set()

    async def start(self) -> RedisRelay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._released.set()
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self._redis_port)
        self._writers += (client_w, redis_w)

        async def to_redis() -> None:
            while data := await client_r.read(65536):
                self.sent += data
                redis_w.write(data)

        async def to_client() -> None:
            while data := await redis_r.read(65536):
                if self.mode == "hold":
                    await self._released.wait()
                if self.mode == "drop":
                    self.mode = "pass"  # once: a client that reconnects is served again
                    return
                client_w.write(data)

        both = [asyncio.ensure_future(to_redis()), asyncio.ensure_future(to_client())]
        _, pending = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_w, redis_w):  # either side ended (or "drop"): both connections go
            writer.transport.abort()
        for task in pending:
            task.cancel()
        await asyncio.gather(*both, return_exceptions=True)  # a reset connection is the point here
