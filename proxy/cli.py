"""``signing-proxy serve | check | demo``. Builds settings from arguments; no import-time side effects."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from proxy.config_errors import ConfigError
from proxy.errors import CredentialsUnavailable

DEFAULT_CONFIG = "proxy.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as error:
        print(f"signing-proxy: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signing-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config_default = os.environ.get("SIGNING_PROXY_CONFIG", DEFAULT_CONFIG)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", default=config_default, help="config YAML (default %(default)s)")
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check", help="validate config and policies")
    check.add_argument("--config", default=config_default)
    check.add_argument("--vault", action="store_true", help="also check every account's secret in Vault")
    check.set_defaults(func=_check)

    demo = sub.add_parser("demo", help="run the whole stack locally and tour it")
    demo.add_argument("--keep-running", action="store_true", help="leave the stack up after the tour")
    demo.set_defaults(func=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from proxy import logs
    from proxy.app import create_app
    from proxy.serve import serve
    from proxy.settings import load_settings

    settings = load_settings(args.config)
    logs.configure(settings.log_level)
    app = create_app(settings)
    asyncio.run(serve(settings, app))
    return 0


def _check(args: argparse.Namespace) -> int:
    from proxy.app import build_store, build_venues
    from proxy.policy_loader import load_policies
    from proxy.settings import load_settings

    settings = load_settings(args.config)
    venues = build_venues(settings)
    policies = load_policies(settings.policies, venues=venues)
    print(f"config {settings.source}: ok ({len(venues)} venues)")
    print(
        f"policies {settings.policies}: ok ({len(policies.clients)} clients in {len(policies.sources)} files)"
    )
    if not args.vault:
        return 0
    return asyncio.run(_check_vault(settings, venues, build_store))


async def _check_vault(settings, venues, build_store) -> int:  # type: ignore[no-untyped-def]
    from proxy.clock import SystemClock
    from proxy.credentials.base import require_fields

    store = build_store(settings, SystemClock())
    failures = 0
    try:
        for name, venue in venues.items():
            for account in sorted(venue.accounts):
                try:
                    creds = await store.get(name, account)
                    require_fields(creds, venue.signer.required_fields, name, account)
                    print(f"vault {name}/{account}: ok")
                except CredentialsUnavailable as error:
                    failures += 1
                    print(f"vault {name}/{account}: FAILED: {error.message}")
    finally:
        await store.close()
    return 1 if failures else 0


def _demo(args: argparse.Namespace) -> int:
    from proxy.demo import run_demo

    return run_demo(keep_running=args.keep_running)


if __name__ == "__main__":
    raise SystemExit(main())
