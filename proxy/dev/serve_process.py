"""``signing-proxy serve`` as a child process on free loopback ports (tests and soak)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from types import TracebackType

import httpx

from proxy.dev.devvault import free_port


class ServeProcess:
    """``async with ServeProcess(config) as proxy:`` — started, healthy, then SIGTERMed."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, stderr: int | None = None) -> None:
        self.config = config
        self.port, self.admin_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "SIGNING_PROXY_LISTEN__PORT": str(self.port),
            "SIGNING_PROXY_ADMIN__PORT": str(self.admin_port),
            **(env or {}),
        }
        self.stderr = asyncio.subprocess.DEVNULL if stderr is None else stderr
        self.process: asyncio.subprocess.Process | None = None
        self.stderr_text = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    async def start(self, timeout_s: float = 20) -> ServeProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--config",
            str(self.config),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.stderr,
        )
        async with httpx.AsyncClient(timeout=1) as http:
            for _ in range(int(timeout_s * 10)):
                if self.process.returncode is not None:
                    raise RuntimeError(f"signing-proxy serve exited early ({self.process.returncode})")
                try:
                    # The admin port can answer before the data plane listens: wait for the
                    # readiness body to say the listener is up (in strict mode too).
                    checks = (await http.get(f"{self.admin_url}/readyz")).json().get("checks", {})
                    if checks.get("listener") == "ok":
                        return self
                except (httpx.TransportError, ValueError):
                    pass
                await asyncio.sleep(0.1)
        self.process.kill()  # never leave a half-started server behind
        await self.process.wait()
        raise RuntimeError("signing-proxy serve did not become healthy")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM (if still running), wait, keep stderr; the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.process.communicate(), timeout=timeout_s)
        self.stderr_text = (err or b"").decode(errors="replace")
        return int(self.process.returncode or 0)

    async def __aenter__(self) -> ServeProcess:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.stop()
