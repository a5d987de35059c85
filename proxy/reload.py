"""Reloading policies and venue config without a restart (SIGHUP, or a file change).

A reload builds everything new first (settings, venues, policies) and only then swaps
the pipeline's references, each one assignment: a request in flight keeps the objects
it started with, the next one sees the new ones. An invalid file is refused, the old
config stays in force, and the error names the file and the field.

What reloads: policies, and each venue's upstream, accounts and scheme options (a venue
whose config did not change keeps its signer, so EVEDEX sessions survive), with the venue
rate-limit profiles recomputed for them. What needs a restart: listen/admin addresses,
Vault, upstream client, rate-limit backend and websocket settings (logged as such).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from proxy.app import build_venues
from proxy.config_errors import ConfigError
from proxy.pipeline import Pipeline, Venue
from proxy.policy_loader import load_policies
from proxy.ratelimit_gate import build_rate_limits
from proxy.settings import Settings, load_settings
from proxy.signers.base import SessionEvents

log = logging.getLogger("signing_proxy.reload")

_RESTART_ONLY = ("listen", "admin", "vault", "upstream", "rate_limits", "websocket", "errors")


class Reloader:
    def __init__(self, pipeline: Pipeline, settings: Settings, events: SessionEvents | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.events = events  # session metrics for signers built by a reload
        self.generation = 0
        self._stamp = self._fingerprint()

    def reload(self) -> bool:
        """Load and swap. Returns False (old config kept) on any config or policy error."""
        try:
            settings = load_settings(self.settings.source)
            venues = build_venues(settings, self.events)
            policies = load_policies(settings.policies, venues=venues)
            limits = build_rate_limits(settings)  # venues added by this reload get their profile
        except ConfigError as error:
            log.error(
                "reload refused, previous config stays",
                extra={"file": error.file, "field": error.field, "error": error.message},
            )
            return False
        self._warn_restart_only(settings)
        self.pipeline.venues = self._keep_unchanged(settings, venues)
        self.pipeline.rate_gate.limits = limits
        self.pipeline.policies = policies
        self.settings = settings
        self.generation += 1
        self._stamp = self._fingerprint()
        log.info(
            "config reloaded", extra={"generation": self.generation, "policy_files": len(policies.sources)}
        )
        return True

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

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        paths = [Path(self.settings.source)]
        policy_dir = Path(self.settings.policies)
        if policy_dir.is_dir():
            paths += sorted(p for p in policy_dir.iterdir() if p.suffix in (".yaml", ".yml"))
        stamp = []
        for path in paths:
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
                self.reload()
