"""Every CLI failure is one line on stderr that says what failed, and exit 2 (issue 15).

Real processes against a real OpenBao dev server: Vault unreachable, a wrong or missing
token (authentication), and a valid token whose policy forbids the write (permission).
Never a traceback, never the token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from proxy.dev.devvault import DevVault, free_port

FIELDS = "api_key=AK-cli-errors\nsecret_key=cli-errors-secret-0123456789abcdef\n"
WRONG = "s.definitely-not-a-token-0123456789"


@pytest.fixture(scope="module")
def vault() -> Iterator[DevVault]:
    with DevVault() as running:
        client = running.client()
        client.sys.create_or_update_policy("read-only", 'path "secret/data/*" { capabilities = ["read"] }')
        yield running


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "proxy.yaml"
    venues = {"coinex": {"scheme": "coinex", "upstream": "https://api.coinex.com", "accounts": ["main"]}}
    (tmp_path / "policies").mkdir(exist_ok=True)
    policy = {"version": 1, "clients": {"c": {"token_sha256": "ab" * 32, "allow": []}}}
    (tmp_path / "policies" / "p.yaml").write_text(yaml.safe_dump(policy))
    path.write_text(yaml.safe_dump({"vault": {"url": url, "timeout_s": 2}, "venues": venues}))
    return path


def _run(config: Path, token: str | None, *argv: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "SIGNING_PROXY_"))}
    if token is not None:
        env["VAULT_TOKEN"] = token
    command = [sys.executable, "-m", "proxy", *argv[:2], "--config", str(config), *argv[2:]]
    result = subprocess.run(command, input=FIELDS, capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in result.stderr + result.stdout
    assert FIELDS.splitlines()[1].split("=")[1] not in result.stderr + result.stdout
    if token:
        assert token not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return result.returncode, lines[0]


COMMANDS = {
    "keys put": ("keys", "put", "--venue", "coinex", "--account", "main"),
    "keys check": ("keys", "check"),
    "check --vault": ("check", "--vault"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_vault_unreachable(tmp_path: Path, command: str) -> None:
    config = _config(tmp_path, f"http://127.0.0.1:{free_port()}")
    code, line = _run(config, WRONG, *COMMANDS[command])
    assert code == 2 and "Vault unreachable" in line and "127.0.0.1" in line


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("token", [WRONG, None], ids=["wrong-token", "no-token"])
def test_wrong_or_missing_token_is_authentication(
    tmp_path: Path, vault: DevVault, command: str, token: str | None
) -> None:
    code, line = _run(_config(tmp_path, vault.url), token, *COMMANDS[command])
    assert code == 2 and "authentication" in line and "unreachable" not in line


def test_put_without_write_permission(tmp_path: Path, vault: DevVault) -> None:
    reader = vault.client().auth.token.create(policies=["read-only"], ttl="10m")["auth"]["client_token"]
    code, line = _run(_config(tmp_path, vault.url), reader, *COMMANDS["keys put"])
    assert code == 2 and "permission" in line and "authentication" not in line
