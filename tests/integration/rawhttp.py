"""Send bytes as an attacker would: HTTP clients normalise paths, a socket does not."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(base_url: str, head: bytes, body: bytes = b"") -> RawResponse:
    """``head`` is the request line and headers without the final blank line."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    header_blob, _, payload = data.partition(b"\r\n\r\n")
    lines = header_blob.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status, headers, payload)


async def open_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to ``url``'s host and port: the test writes the bytes itself."""
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the proxy sends until it closes; fails if it keeps the connection open."""
    data = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=10)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
