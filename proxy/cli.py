"""``signing-proxy serve | check | demo | keys … | policy test | policy explain``.

Builds settings from arguments; no import-time side effects.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.cli_errors import CliFailure
from proxy.config_errors import ConfigError
from proxy.errors import CredentialsUnavailable, SigningFailed

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs
    from proxy.policy.cases import PolicyWorld
    from proxy.settings import Settings
    from proxy.venue import Venue

DEFAULT_CONFIG = "proxy.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(redact=argv[:1] == ["keys"])  # keys: errors never echo an argument's value
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as error:
        print(f"signing-proxy: configuration error: {error}", file=sys.stderr)
        return 2
    except CliFailure as error:  # one line: what failed (unreachable, authentication, permission)
        print(f"signing-proxy: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser(redact: bool = False) -> argparse.ArgumentParser:
    from proxy.keys.cli import RedactingParser, add_keys_parser

    parser_class = RedactingParser if redact else argparse.ArgumentParser
    parser = parser_class(prog="signing-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config_default = os.environ.get("SIGNING_PROXY_CONFIG", DEFAULT_CONFIG)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", default=config_default, help="config YAML (default %(default)s)")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="data-plane processes: N or auto (= usable cores); default listen.workers (1). "
        "More than 1 needs rate_limits.backend: redis",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker's own flag
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check", help="validate config and policies")
    check.add_argument("--config", default=config_default)
    check.add_argument("--vault", action="store_true", help="also check every account's secret in Vault")
    check.set_defaults(func=_check)

    demo = sub.add_parser("demo", help="run the whole stack locally and tour it")
    demo.add_argument("--keep-running", action="store_true", help="leave the stack up after the tour")
    demo.add_argument(
        "--transit",
        nargs="?",
        const="coinex",
        metavar="VENUE",
        help="sign one venue (default coinex) with a key held in Vault Transit (docs/transit.md)",
    )
    demo.set_defaults(func=_demo)

    add_keys_parser(sub, config_default)

    _policy_parsers(sub.add_parser("policy", help="test and explain policy decisions"))
    return parser


def _policy_parsers(policy: argparse.ArgumentParser) -> None:
    sub = policy.add_subparsers(dest="policy_command", required=True)
    where = "policies from --policies DIR, else from --config (default $SIGNING_PROXY_CONFIG or proxy.yaml)"

    test = sub.add_parser("test", help="check a table of cases against the policies", description=where)
    test.add_argument("cases", help="cases YAML (docs/policies.md)")
    test.set_defaults(func=_policy_test)

    explain = sub.add_parser("explain", help="print the decision for one request", description=where)
    explain.add_argument("--client", required=True, help="client name as in the policy files")
    explain.add_argument("--venue", required=True)
    explain.add_argument("--account", required=True)
    explain.add_argument("--method", required=True, type=str.upper)
    explain.add_argument("--path", required=True, help="upstream path, may carry ?query")
    explain.add_argument("--body", default="", help="request body, e.g. a JSON object")
    explain.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a request header, e.g. 'Content-Type: text/plain' (default Content-Type: application/json)",
    )
    explain.set_defaults(func=_policy_explain)
    for command in (test, explain):
        group = command.add_mutually_exclusive_group()
        group.add_argument("--config", help="proxy config: its policies directory and venue schemes")
        group.add_argument("--policies", help="policy directory (venue names are taken as scheme names)")


def _serve(args: argparse.Namespace) -> int:
    from proxy import logs
    from proxy.app import create_app
    from proxy.serve import serve
    from proxy.settings import load_settings
    from proxy.workers import check_shared_state, resolve_workers, reuse_port_socket, run_workers

    settings = load_settings(args.config)
    workers = resolve_workers(args.workers if args.workers is not None else settings.listen.workers)
    check_shared_state(settings, workers)  # before anything starts: a limit is never multiplied
    if workers > 1:
        return run_workers(args.config, settings, workers)
    logs.configure(settings.log_level)
    app = create_app(settings)
    sockets = None
    if args.reuse_port:  # one of run_workers' children: the parent holds the port
        sock = reuse_port_socket(settings.listen.host, settings.listen.port)
        sockets = [sock]
    asyncio.run(serve(settings, app, sockets=sockets))
    return 0


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer or auto") from None
    if not 1 <= count <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256, or auto")
    return count


def _check(args: argparse.Namespace) -> int:
    from proxy.app import build_rate_limits, build_venues
    from proxy.policy.cases import report_mode_notes
    from proxy.policy.loader import load_policies
    from proxy.settings import load_settings
    from proxy.workers import check_shared_state, resolve_workers

    settings = load_settings(args.config)
    check_shared_state(settings, resolve_workers(settings.listen.workers))  # what serve would refuse
    venues = build_venues(settings)
    policies = load_policies(settings.policies, venues=venues)
    build_rate_limits(settings)  # venue profiles and overrides: errors name the file and field
    print(f"config {settings.source}: ok ({len(venues)} venues)")
    print(
        f"policies {settings.policies}: ok ({len(policies.clients)} clients in {len(policies.sources)} files)"
    )
    for note in report_mode_notes(policies):
        print(f"policies: note: {note} (denials are only logged)")
    if settings.rate_limits.backend == "redis":  # deployments on one Redis must not share a prefix
        print(f"rate limits: redis key prefix {settings.rate_limits.key_prefix}")
    if not args.vault:
        return 0
    return asyncio.run(_check_vault(settings, venues))


async def _check_vault(settings: Settings, venues: dict[str, Venue]) -> int:
    from proxy.app import build_store
    from proxy.clock import SystemClock
    from proxy.messages import require_fields

    store = build_store(settings, SystemClock())
    failures = 0
    try:
        state = await store.health()  # unreachable / authentication failed: one line, exit 2
        if state != "ok":
            raise CliFailure(f"Vault {state} at {settings.vault.url}")
        for name, venue in venues.items():
            for account in sorted(venue.accounts):
                try:
                    creds = await store.get(name, account)
                    require_fields(creds, venue.required_fields(account), name, account)
                    venue.signer.validate_secret(creds)  # parsed as the signer will
                    print(f"vault {name}/{account}: ok")
                except (CredentialsUnavailable, SigningFailed) as error:
                    failures += 1
                    print(f"vault {name}/{account}: FAILED: {error.message}")
    finally:
        await store.close()
    return 1 if failures else 0


def _policy_test(args: argparse.Namespace) -> int:
    from proxy.policy.cases import load_cases, print_results, run_cases

    cases = load_cases(args.cases)
    policies = args.policies
    if policies is None and args.config is None and cases.policies is not None:
        policies = Path(args.cases).parent / cases.policies
    world = _world(args.config or _default_config(), policies, cases.schemes)
    return print_results(run_cases(world, cases, args.cases), sys.stdout)


def _world(
    config: str | None, policies: str | Path | None, schemes: Mapping[str, str] | None = None
) -> PolicyWorld:
    """A policy directory alone, or a proxy config's policies and venue schemes."""
    from proxy.policy.cases import load_world

    if policies is not None:
        return load_world(policies, schemes)
    from proxy.settings import load_settings  # imports every signer: only when a config is used

    settings = load_settings(config or "proxy.yaml")
    configured = {name: venue.scheme for name, venue in settings.venues.items()}
    return load_world(settings.policies, schemes, configured)


def _policy_explain(args: argparse.Namespace) -> int:
    from proxy.policy.cases import evaluate, print_explanation

    world = _world(args.config or _default_config(), args.policies)
    client = world.client(args.client, args.policies or args.config or _default_config(), "--client")
    body = args.body.encode()
    headers = tuple(_header(text) for text in args.header)
    decision = evaluate(world, client, args.venue, args.account, args.method, args.path, body, headers)
    return print_explanation(world, decision, args.venue, args.method, args.path, sys.stdout)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise SystemExit(f"--header {text!r}: expected NAME:VALUE")
    return name.strip().lower(), value.strip()


def _default_config() -> str:
    return os.environ.get("SIGNING_PROXY_CONFIG", DEFAULT_CONFIG)


def _demo(args: argparse.Namespace) -> int:
    from proxy.dev.demo import run_demo

    return run_demo(keep_running=args.keep_running, transit=args.transit)


if __name__ == "__main__":
    raise SystemExit(main())
