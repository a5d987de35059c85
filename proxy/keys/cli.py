"""``signing-proxy keys put | rotate | retire | check``: the security team's tool.

Secrets are read from standard input (prompted without echo on a terminal) or from
``--file``; never from arguments or the environment, where shell history, ``ps`` and CI
logs would keep them. The input is a YAML/JSON mapping or ``key=value`` lines::

    printf 'api_key=%s\\nsecret_key=%s\\n' … | signing-proxy keys put --venue coinex --account main --transit

Every scalar is read as a string (YAML's ``0x1F`` or ``1e3`` stay as written), and no
error message quotes the input. Parsers of this group never echo argument values either:
a secret pasted after ``--account`` by mistake is not printed back. Vault access: the
token in ``VAULT_TOKEN`` (the security team's), else the proxy config's ``vault.auth``.
What each command does to Vault is in ``proxy.keys.provisioning`` and ``docs/transit.md``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

if TYPE_CHECKING:  # heavy imports happen when a command runs, not when the CLI builds its parser
    from proxy.keys.provisioning import Account, KeyVault
    from proxy.settings import Settings

_KEY_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_NOT_SHOWN = (
    "unrecognized arguments (not shown: secrets are read from standard input or --file, never from arguments)"
)


class RedactingParser(argparse.ArgumentParser):
    """An argument parser whose errors never quote an argument's value."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message = _NOT_SHOWN
        message = re.sub(r"(invalid [^:]*): '.*", r"\1", message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


class InputError(Exception):
    """The secret input is unusable; the message never quotes it."""


def add_keys_parser(sub: Any, config_default: str) -> None:
    keys = sub.add_parser("keys", help="put, rotate, retire and check venue keys in Vault")
    commands = keys.add_subparsers(dest="keys_command", required=True, parser_class=RedactingParser)
    put = commands.add_parser("put", help="store an account's keys (KV, or Transit with --transit)")
    rotate = commands.add_parser("rotate", help="store new keys; the previous version stays usable")
    retire = commands.add_parser("retire", help="stop a Transit key's older versions from signing")
    check = commands.add_parser("check", help="check every configured account for its signing mode")
    for command in (put, rotate, retire, check):
        command.add_argument("--config", default=config_default, help="proxy config (default %(default)s)")
    for command in (put, rotate, retire):
        command.add_argument("--venue", required=True)
        command.add_argument("--account", required=True)
    for command in (put, rotate):
        command.add_argument("--file", help="read the fields from this file instead of standard input")
    put.add_argument("--transit", action="store_true", help="import the key into Vault Transit (BYOK)")
    retire.add_argument("--below", type=int, required=True, help="first version that may still sign")
    retire.add_argument(
        "--force",
        action="store_true",
        help="retire before vault.cache_ttl_s + stale_grace_s have passed since the pin moved",
    )
    put.set_defaults(func=_put)
    rotate.set_defaults(func=_rotate)
    retire.set_defaults(func=_retire)
    check.set_defaults(func=_check)


# --- reading secrets --------------------------------------------------------------------


def parse_fields(text: str) -> dict[str, str]:
    """A YAML/JSON mapping of strings, or ``key=value`` lines (``#`` comments, blank lines)."""
    lines = [line.strip() for line in text.splitlines()]
    first = next((line for line in lines if line and not line.startswith("#")), "")
    if not first:
        raise InputError("no fields on the input")
    if _KEY_VALUE.match(first):
        return _key_value_lines(lines)
    try:
        data = yaml.load(text, Loader=_StringLoader)  # a BaseLoader: strings only, nothing executed
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"the input is neither key=value lines nor a YAML/JSON mapping{where}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError("the input must map field names to plain string values")
    return {str(k): v for k, v in data.items()}


def _key_value_lines(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if not _KEY_VALUE.match(line):
            raise InputError(f"line {number} is not name=value")
        name, _, value = line.partition("=")
        if name in fields:
            raise InputError(f"field {name} is given twice")
        fields[name] = value
    return fields


class _StringLoader(yaml.BaseLoader):
    """YAML with every scalar a string (a hex secret must not become an int); no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.value in seen:
                raise InputError(f"field {key_node.value} is given twice")
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def read_fields(file: str | None, prompt: Sequence[str], stdin: Any = None) -> dict[str, str]:
    stdin = stdin or sys.stdin
    if file is not None:
        path = Path(file)
        try:
            if path.stat().st_mode & 0o077:
                print(f"signing-proxy keys: warning: {file} is readable by others", file=sys.stderr)
            return parse_fields(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read {file} ({exc.strerror})") from None
    if stdin.isatty():  # a person at a terminal: ask for each field, without echo
        return {name: getpass.getpass(f"{name}: ") for name in prompt}
    return parse_fields(stdin.read())


# --- commands -----------------------------------------------------------------------------


def _put(args: argparse.Namespace) -> int:
    from proxy.keys.provisioning import put_kv, put_transit
    from proxy.signing_modes import default_transit_key

    _, vault, account = _open(args)
    if not args.transit:
        return _report(lambda: put_kv(vault, account, _fields(args, account, transit=False)))
    key = account.transit_key or default_transit_key(account.venue, account.name)
    notes = [] if account.transit_key else [_switch_note(account, key)]
    account = replace(account, transit_key=key)
    return _report(lambda: put_transit(vault, account, _fields(args, account, transit=True), key) + notes)


def _rotate(args: argparse.Namespace) -> int:
    from proxy.keys.provisioning import rotate

    _, vault, account = _open(args)
    return _report(lambda: rotate(vault, account, _fields(args, account, transit=bool(account.transit_key))))


def _retire(args: argparse.Namespace) -> int:
    from proxy.keys.provisioning import retire

    settings, vault, account = _open(args)
    hold_s = settings.vault.cache_ttl_s + settings.vault.stale_grace_s  # how long a replica may cache the pin
    return _report(lambda: retire(vault, account, args.below, hold_s=hold_s, force=args.force))


def _check(args: argparse.Namespace) -> int:
    from proxy.keys.provisioning import check

    settings = _settings(args)
    vault = _vault(settings)
    failures = 0
    for account in _accounts(settings).values():
        problems = _guard(partial(check, vault, account))
        failures += bool(problems)
        print(f"keys {account.label}: " + ("ok" if not problems else "FAILED: " + "; ".join(problems)))
    return 1 if failures else 0


def _fields(args: argparse.Namespace, account: Account, transit: bool) -> dict[str, str]:
    signer = account.signer
    needed = (*signer.public_fields(), *signer.key_fields) if transit else signer.required_fields
    return read_fields(args.file, needed)


def _switch_note(account: Account, key: str) -> str:
    return (
        f"{account.venue}/{account.name}: the config still says signing: kv; switch it to "
        f"{{name: {account.name}, signing: transit}} (key {key}) before vault.cache_ttl_s runs out"
    )


def _report(run: Callable[[], list[str]]) -> int:
    notes = _guard(run, fail=True)
    for note in notes:
        print(note)
    return 0


def _guard(run: Callable[[], list[str]], fail: bool = False) -> list[str]:
    """Run a command; KeysError, bad input and Vault refusals end it with one line, exit 2
    (``fail``), or become the account's problem in a ``keys check`` report."""
    import hvac.exceptions
    import requests

    from proxy.cli_errors import CliFailure
    from proxy.credentials.transit_admin import vault_reason
    from proxy.keys.provisioning import KeysError

    try:
        return run()
    except (KeysError, InputError) as error:
        problem = str(error)
    except hvac.exceptions.Forbidden as error:
        problem = f"Vault permission denied: {vault_reason(error)}"
    except hvac.exceptions.VaultError as error:
        problem = f"Vault refused: {vault_reason(error)}"
    except requests.RequestException as error:  # Vault went away mid-command
        raise CliFailure(f"Vault unreachable ({type(error).__name__})") from None
    if not fail:
        return [problem]
    raise CliFailure(problem)


# --- wiring ---------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    from proxy.settings import load_settings

    return load_settings(args.config)


def _open(args: argparse.Namespace) -> tuple[Settings, KeyVault, Account]:
    settings = _settings(args)
    account = _accounts(settings).get((args.venue, args.account))
    if account is None:
        print(
            f"signing-proxy keys: {args.venue}/{args.account} is not an account in {args.config}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return settings, _vault(settings), account


def _accounts(settings: Settings) -> dict[tuple[str, str], Account]:
    from proxy.app import build_venues
    from proxy.keys.provisioning import Account

    accounts = {}
    for name, venue in build_venues(settings).items():
        for account in sorted(venue.accounts):
            accounts[(name, account)] = Account(name, account, venue.signer, venue.transit_keys.get(account))
    return accounts


def _vault(settings: Settings) -> KeyVault:
    from proxy.app import build_login
    from proxy.cli_errors import login_failure, verify_token
    from proxy.config_errors import ConfigError
    from proxy.credentials.vault import make_client
    from proxy.keys.provisioning import KeyVault

    vault = settings.vault
    if not vault.url:
        raise ConfigError(settings.source, "vault.url", "no Vault address (set vault.url or VAULT_ADDR)")
    client = make_client(vault.url, None, vault.timeout_s)
    token = os.environ.get("VAULT_TOKEN")  # the security team's own token, not the proxy's
    if token:
        client.token = token
    else:
        try:
            build_login(settings).login(client)
        except Exception as exc:
            failure = login_failure(exc, vault.url, vault.auth.method)
            if failure is None:
                raise
            raise failure from None
    verify_token(client, vault.url)  # authentication, told apart from a later permission refusal
    return KeyVault(client, vault.kv_mount, vault.kv_prefix, vault.transit_mount)
