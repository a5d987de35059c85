"""Reloading policies and venue config without a restart (SIGHUP, or a file change).

A reload builds everything new first (settings, venues, policies) and only then swaps
the pipeline's references (``Pipeline.swap``), each one assignment: a request in flight keeps the objects
it started with, the next one sees the new ones. An invalid file is refused, the old
config stays in force, and the error names the file and the field.

What reloads: policies, and each venue's upstream, accounts and scheme options (a venue
whose config did not change keeps its signer, so EVEDEX sessions survive), with the venue
rate-limit profiles recomputed for them; a new signer is built by the same builder as at
startup (``proxy.app.VenueBuilder``: metrics, shared EVEDEX sessions). What needs a
restart: listen/admin addresses, Vault, upstream client, rate-limit backend and websocket
settings (logged as such).

A file written in place can be read half-written: a truncated policy still parses, minus
its trailing deny rule. So a reload first waits until the file set reads the same twice,
``reload_settle_s`` apart, builds from it, and re-reads it after the build: anything that
changed meanwhile means another round. The build (YAML, pydantic, glob compilation: 100 ms
and more for a few hundred clients) runs in a worker thread; only the swap, a handful of
assignments, runs on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from proxy.app import build_rate_limits, build_venues
from proxy.config_errors import ConfigError
from proxy.pipeline import Pipeline
from proxy.policy.loader import load_policies
from proxy.policy.rules import PolicySet
from proxy.ratelimit.gate import RateLimits
from proxy.settings import Settings, load_settings
from proxy.signers.base import SessionEvents
from proxy.venue import Venue

log = logging.getLogger("signing_proxy.reload")

_RESTART_ONLY = ("listen", "admin", "vault", "upstream", "rate_limits", "websocket", "errors")
_MAX_ROUNDS = 20  # files still changing after this many settle periods: try at the next change

Snapshot = tuple[tuple[str, str], ...]  # (path, sha256 of its bytes or "absent")


@dataclass(frozen=True)
class Built:
    settings: Settings
    venues: dict[str, Venue]
    policies: PolicySet
    limits: RateLimits


class Reloader:
    def __init__(self, pipeline: Pipeline, settings: Settings, events: SessionEvents | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings
        # One builder for startup and reloads: the pipeline's (create_app's VenueBuilder, which
        # wires metrics and shared sessions); a hand-built pipeline gets build_venues with events.
        self._build_venues = pipeline.build_venues or functools.partial(build_venues, events=events)
        self.generation = 0
        self._stamp = self._fingerprint()
        self._lock = asyncio.Lock()  # one reload at a time (SIGHUP and the watcher)
        self._tasks: set[asyncio.Task[bool]] = set()

    def reload(self) -> bool:
        """Load and swap now, on the caller's thread (tests, tools). Returns False (old config
        kept) on any config or policy error. The server uses ``reload_async``."""
        built = self._build()
        if built is None:
            return False
        self._swap(built)
        return True

    async def reload_async(self) -> bool:
        """Wait for the files to settle, build off the loop, swap on it. False: old config kept."""
        async with self._lock:
            settle_s = self.settings.reload_settle_s
            for _ in range(_MAX_ROUNDS):
                before = await self._settled(settle_s)
                if before is None:
                    break
                built = await asyncio.to_thread(self._build)
                if built is None:
                    return False
                if await asyncio.to_thread(self._snapshot) == before:  # nothing moved under the build
                    self._swap(built)
                    return True
            log.warning("reload postponed: the config files keep changing")
            return False

    def request_reload(self) -> None:
        """SIGHUP handler: a reload task (the handler itself must not block the loop)."""
        task = asyncio.get_running_loop().create_task(self.reload_async())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settled(self, settle_s: float) -> Snapshot | None:
        """The file set once it reads the same twice ``settle_s`` apart; None if it never does."""
        previous = await asyncio.to_thread(self._snapshot)
        if settle_s <= 0:
            return previous
        for _ in range(_MAX_ROUNDS):
            await asyncio.sleep(settle_s)
            current = await asyncio.to_thread(self._snapshot)
            if current == previous:
                return current
            previous = current
        return None

    def _build(self) -> Built | None:
        try:
            settings = load_settings(self.settings.source)
            venues = self._build_venues(settings)
            policies = load_policies(settings.policies, venues=venues)
            limits = build_rate_limits(settings)  # venues added by this reload get their profile
        except ConfigError as error:
            log.error(
                "reload refused, previous config stays",
                extra={"file": error.file, "field": error.field, "error": error.message},
            )
            return None
        return Built(settings, venues, policies, limits)

    def _swap(self, built: Built) -> None:
        # On the event loop, no await in between: a request sees the old set or the new one.
        self._warn_restart_only(built.settings)
        venues = self._keep_unchanged(built.settings, built.venues)
        self.pipeline.swap(policies=built.policies, venues=venues, limits=built.limits)
        self.settings = built.settings
        self.generation += 1
        self._stamp = self._fingerprint()
        log.info(
            "config reloaded",
            extra={"generation": self.generation, "policy_files": len(built.policies.sources)},
        )

    def _keep_unchanged(self, settings: Settings, fresh: dict[str, Venue]) -> dict[str, Venue]:
        current = self.pipeline.venues
        kept = {}
        for name, venue in fresh.items():
            unchanged = name in current and self.settings.venues.get(name) == settings.venues[name]
            kept[name] = current[name] if unchanged else venue
        return kept

    def _warn_restart_only(self, settings: Settings) -> None:
        for section in _RESTART_ONLY:
            if getattr(settings, section) != getattr(self.settings, section):
                log.warning("config section changed but needs a restart", extra={"section": section})

    def _paths(self) -> list[Path]:
        paths = [Path(self.settings.source)]
        policy_dir = Path(self.settings.policies)
        if policy_dir.is_dir():
            paths += sorted(p for p in policy_dir.iterdir() if p.suffix in (".yaml", ".yml"))
        return paths

    def _snapshot(self) -> Snapshot:
        digests = []
        for path in self._paths():
            try:
                digests.append((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
            except OSError:
                digests.append((str(path), "absent"))
        return tuple(digests)

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        stamp = []
        for path in self._paths():
            try:
                info = path.stat()
                stamp.append((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                stamp.append((str(path), -1, -1))
        return tuple(stamp)

    def changed(self) -> bool:
        return self._fingerprint() != self._stamp

    async def watch(self, interval_s: float = 2.0) -> None:
        """Poll the config file and the policy directory; reload when they change.

        Polling rather than inotify: Kubernetes updates mounted ConfigMaps by swapping a
        symlink, which mtime/size polling sees reliably on every filesystem.
        """
        while True:
            await asyncio.sleep(interval_s)
            if self.changed():
                self._stamp = self._fingerprint()  # a refused file is not retried until it changes
                await self.reload_async()
