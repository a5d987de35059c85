"""``serve --workers N``: N data-plane processes on one port (SO_REUSEPORT).

Why processes: one Python process serves on one core (the GIL); a second core needs a
second interpreter. Why SO_REUSEPORT rather than one shared accept socket: the kernel
spreads new connections evenly over the workers' own listening sockets, where a shared
socket lets whichever worker wakes first take the next connection (uneven under keep-alive).

What is shared between workers, and what is not (README "Several workers"):

* rate limits: only through Redis. With more than one worker, ``rate_limits.backend`` must
  be ``redis``; a memory backend would give every worker its own buckets and silently
  multiply every limit by N, so that configuration is refused at startup, naming the field.
  The same holds for EVEDEX logins (``rate_limits.shared_sessions`` must not be false): one
  single-flight login for all workers, as across replicas.
* credential caches, policy, compiled routes, metrics: per worker (each reads Vault and
  reloads on its own; SIGHUP to the parent is passed to every worker).
* the admin listener: one per worker, worker ``i`` on ``admin.port + i`` (``admin.port: 0``:
  each picks a free port). Its ``/metrics`` are that worker's only; scrape every port (or
  sum them). Simple and honest: no worker answers for another.

The parent only holds the port (a bound, never listening socket: the kernel hands it no
connection) and supervises: SIGTERM/SIGINT/SIGHUP are passed to every worker (each in its own
process group, and SIGTERMed should the parent die); if one worker
exits on its own, the others are stopped and the parent exits 1, so the supervisor above
(systemd, Kubernetes) restarts the whole set rather than running with fewer workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Literal

from proxy.children import die_with_parent
from proxy.config_errors import ConfigError
from proxy.settings import ENV_PREFIX, Settings


def resolve_workers(value: int | Literal["auto"]) -> int:
    """``auto``: the cores this process may run on (its CPU affinity, not the machine's)."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return value


def check_shared_state(settings: Settings, workers: int) -> None:
    """Refuse a configuration whose limits or sessions would be per worker."""
    if workers <= 1:
        return
    limits = settings.rate_limits
    if limits.backend != "redis":
        raise ConfigError(
            settings.source,
            "rate_limits.backend",
            f"{workers} workers need backend: redis (with memory, every worker keeps its own "
            f"buckets and each limit would be multiplied by {workers})",
        )
    if limits.shared_sessions is False:
        raise ConfigError(
            settings.source,
            "rate_limits.shared_sessions",
            f"{workers} workers need shared EVEDEX sessions (false: one login per worker)",
        )


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_workers(config: str, settings: Settings, workers: int) -> int:
    """Start ``workers`` children of ``signing-proxy serve`` on one port; supervise them."""
    admin = settings.admin.port

    def child(index: int, port: int) -> tuple[list[str], dict[str, str]]:
        env = {
            f"{ENV_PREFIX}LISTEN__PORT": str(port),
            f"{ENV_PREFIX}LISTEN__WORKERS": "1",
            f"{ENV_PREFIX}ADMIN__PORT": str(admin + index if admin else 0),
        }
        return [sys.executable, "-m", "proxy", "serve", "--config", str(Path(config)), "--reuse-port"], env

    return supervise(settings.listen.host, settings.listen.port, workers, child)


ChildCommand = Callable[[int, int], tuple[list[str], dict[str, str]]]  # (index, port) -> argv, env


def supervise(host: str, port: int, workers: int, child_command: ChildCommand) -> int:
    """Hold ``host:port``, start ``workers`` children (each binds it with SO_REUSEPORT),
    pass signals on, and stop the set when one exits on its own. The exit code: 0 after an
    orderly stop of every worker, else 1."""
    holder = reuse_port_socket(host, port)  # port 0: chosen here, then shared
    port = holder.getsockname()[1]
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        for index in range(workers):
            argv, env = child_command(index, port)
            children.append(
                subprocess.Popen(
                    argv,
                    env={**os.environ, **env},
                    # Own process group: a terminal's Ctrl-C reaches the parent only, which passes
                    # it on once (twice would make uvicorn skip the drain). SIGTERM if the parent
                    # dies, even by SIGKILL: no orphaned worker keeps the port.
                    process_group=0,
                    preexec_fn=die_with_parent(),
                )
            )
        print(f"signing-proxy: {workers} workers on port {port} (SO_REUSEPORT)", flush=True)
        while True:
            codes = [child.poll() for child in children]
            if all(code is not None for code in codes):
                return 0 if stopping and all(code == 0 for code in codes) else 1
            if not stopping and any(code is not None for code in codes):
                stopping = True  # one worker died: stop the set, let the supervisor restart it
                for child in children:
                    if child.poll() is None:
                        child.terminate()
                for child in children:
                    child.wait()
                return 1
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        holder.close()
