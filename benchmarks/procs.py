"""Processes of a run: started pinned to a core, waited for, stopped by their own pid.

Pinning uses ``sched_setaffinity`` in the child before ``exec`` (what ``taskset -c N``
does), so threads a server starts later inherit it. ``Cores`` says which core serves what:
the server under test alone on one core, the load generator, the venue stand-in and this
orchestrator on the other. On a one-core machine nothing is pinned (and the run says so).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Every core this run may use, read at import, before ``pin_self`` narrows the orchestrator
# (its children inherit that): a child placed on ``None`` gets all of them back.
MACHINE_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@dataclass(frozen=True, slots=True)
class Cores:
    proxy: int | None  # the server under test (the proxy, or nginx proxy_pass)
    load: int | None  # load generator, venue stand-in, orchestrator

    @classmethod
    def plan(cls) -> Cores:
        available = MACHINE_CORES
        if len(available) < 2:
            return cls(None, None)
        return cls(available[0], available[1])

    def describe(self) -> str:
        if self.proxy is None:
            return "not pinned (fewer than 2 cores)"
        return f"server under test on core {self.proxy}; load generator + venue stand-in on core {self.load}"


def pin_self(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})


def _pinner(core: int | None) -> Callable[[], None] | None:
    """The child's core before ``exec``; ``None``: every core of the machine, not the one
    core of the orchestrator it would otherwise inherit."""
    cores = MACHINE_CORES if core is None else [core]
    if not cores:
        return None
    return lambda: os.sched_setaffinity(0, cores)


class Process:
    """One child process with its output in ``<workdir>/<name>.log``."""

    def __init__(self, name: str, argv: Sequence[str], core: int | None, workdir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.core = core
        self.log_path = workdir / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_path.open("wb") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_pinner(self.core),
                start_new_session=True,  # a Ctrl-C reaches the orchestrator, which stops us
            )
        return self

    def wait_port(self, port: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._popen is not None and self._popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited during startup:\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on port {port} within {timeout_s}s:\n{self.tail()}")

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10) -> None:
        popen, self._popen = self._popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def cpu_seconds(pid: int) -> float | None:
    """CPU time run so far by a process, all its threads and its descendants (nginx's worker
    is the master's child), from ``/proc/<pid>/task/*/schedstat`` (ns). ``None`` if unreadable.

    Robust to a busy machine where req/s is not: another process taking half the core halves
    the server's req/s but leaves its CPU time per request unchanged.
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
            children = task / "children"
            for child in children.read_text().split() if children.exists() else ():
                total += int((cpu_seconds(int(child)) or 0) * 1e9)
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def machine_busy(seconds: float = 1.0) -> float:
    """Fraction of all cores busy over ``seconds`` (``/proc/stat``): other people's work."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError):
        return 0.0
    return (busy1 - busy0) / max(1, total1 - total0)


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_json_line(argv: Sequence[str], core: int | None, marker: str, timeout_s: float) -> str:
    """Run a measuring child to completion and return the line after ``marker``."""
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=_pinner(core),
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(marker):
            return line[len(marker) :].strip()
    raise RuntimeError(
        f"{argv[0]} produced no result (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
