"""Start and stop everything a run talks to: the venue stand-in and the servers under test.

All servers start once and stay up for the whole run, each on its own port; only the one
being measured is busy, the others sit idle in ``epoll``. Keeping them up keeps their
upstream pools warm and makes interleaving the configurations cheap.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import nginx, procs
from benchmarks.configs import PYTHON_SERVERS, WORKERS
from benchmarks.procs import Cores, Process
from proxy.dev.devvault import free_port


class Servers:
    def __init__(
        self,
        workdir: Path,
        cores: Cores,
        upstream_kind: str,
        nginx_path: str | None,
        target_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.target_args = target_args  # extra flags for every ``benchmarks.targets`` process
        self.cores = cores
        self.upstream_kind = upstream_kind  # "nginx" | "python"
        self.nginx_path = nginx_path
        self.ports: dict[str, int] = {}
        self._processes: list[Process] = []
        self._by_name: dict[str, Process] = {}

    @property
    def upstream_origin(self) -> str:
        return f"http://127.0.0.1:{self.ports['upstream']}"

    def start(self, servers: set[str]) -> None:
        """The stand-in first (the others need its port), then the rest side by side."""
        self._wait([self._start_upstream()])
        if servers & set(WORKERS):
            self._wait([self._start_redis()])
        waiting = []
        for server in sorted(servers - {"upstream"}):
            if server == "nginx":
                waiting.append(self._start_nginx_proxy())
            elif server in PYTHON_SERVERS:
                waiting.append(self._start_python(server))
            else:
                raise ValueError(f"unknown server {server!r}")
        self._wait(waiting)

    def _launch(self, name: str, argv: list[str], core: int | None, port: int) -> tuple[Process, int]:
        process = Process(name, argv, core, self.workdir).start()
        self._processes.append(process)
        self._by_name[name] = process
        return process, port

    def _wait(self, started: list[tuple[Process, int]]) -> None:
        for process, port in started:
            process.wait_port(port)
            self.ports[process.name] = port

    def _start_upstream(self) -> tuple[Process, int]:
        port = free_port()
        if self.upstream_kind == "nginx":
            assert self.nginx_path is not None
            conf = self.workdir / "upstream.conf"
            conf.write_text(nginx.upstream_conf(self.workdir, port))
            argv = nginx.command(self.nginx_path, conf, self.workdir)
        else:
            argv = procs.python("benchmarks.upstream", "--port", str(port))
        return self._launch("upstream", argv, self.cores.load, port)

    def _start_redis(self) -> tuple[Process, int]:
        port = free_port()
        argv = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        return self._launch("redis", argv, self.cores.load, port)

    def _start_nginx_proxy(self) -> tuple[Process, int]:
        assert self.nginx_path is not None
        port = free_port()
        conf = self.workdir / "proxy-pass.conf"
        conf.write_text(nginx.proxy_pass_conf(self.workdir, port, self.ports["upstream"]))
        return self._launch(
            "nginx", nginx.command(self.nginx_path, conf, self.workdir), self.cores.proxy, port
        )

    def _start_python(self, server: str) -> tuple[Process, int]:
        port = free_port()
        workdir = self.workdir / server
        workdir.mkdir(exist_ok=True)
        argv = procs.python(
            "benchmarks.targets",
            server,
            "--port",
            str(port),
            "--upstream",
            self.upstream_origin,
            "--workdir",
            str(workdir),
            *self.target_args,
        )
        core = self.cores.proxy
        if server in WORKERS:
            argv += [
                "--redis",
                f"redis://127.0.0.1:{self.ports['redis']}/0",
                "--workers",
                str(WORKERS[server]),
            ]
            if WORKERS[server] > 1:
                core = None  # every core: what --workers is for (shared with the load generator)
        return self._launch(server, argv, core, port)

    def cpu_seconds(self, server: str) -> float | None:
        """CPU time the server's processes have used so far (``procs.cpu_seconds``)."""
        pid = self._by_name[server].pid
        return None if pid is None else procs.cpu_seconds(pid)

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
