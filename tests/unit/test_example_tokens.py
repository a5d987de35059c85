"""Issue 19 item 3: the image ships no policy, and the repo's example tokens never serve.

The example tokens are printed in the repo for anyone to read; a policy that still carries
one (a copied example) must stop ``serve`` and ``check``, naming the file and the client.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxy.cli import main
from proxy.config_errors import ConfigError
from proxy.policy.example_tokens import EXAMPLE_TOKEN_SHA256
from proxy.policy.loader import load_policies

REPO = Path(__file__).resolve().parents[2]
_HASH = re.compile(r"token_sha256:\s*\"?([0-9a-f]{64})")
# Files a reader copies from: the shipped policies, the README, docs, the chart.
SHIPPED = [
    *sorted((REPO / "policies").glob("*.yaml")),
    REPO / "README.md",
    *sorted((REPO / "docs").rglob("*.md")),
    REPO / "helm" / "signing-proxy" / "values.yaml",
    REPO / "helm" / "signing-proxy" / "sidecar-example.yaml",
    REPO / "proxy.example.yaml",
]
PLACEHOLDER = "0" * 64  # the chart's "replace me": no token hashes to it


def _config(tmp_path: Path, policies: Path) -> Path:
    config = tmp_path / "proxy.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "policies": str(policies),
                "vault": {"url": "http://127.0.0.1:1"},
                "venues": {
                    "coinex": {"scheme": "coinex", "upstream": "https://api.coinex.com", "accounts": ["main"]}
                },
            }
        )
    )
    return config


def test_dockerfile_ships_no_policy() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    copies = [line for line in dockerfile.splitlines() if line.strip().upper().startswith(("COPY", "ADD"))]
    assert copies, "the Dockerfile copies something"
    for line in copies:
        assert "/etc/signing-proxy/policies" not in line, line
        assert "example.yaml" not in line, line


def test_every_token_hash_in_shipped_files_is_a_known_example() -> None:
    found = {}
    for path in SHIPPED:
        for digest in _HASH.findall(path.read_text(encoding="utf-8")):
            found[digest] = path
    assert found, "the example policy carries token hashes"
    for digest, path in found.items():
        assert digest == PLACEHOLDER or digest in EXAMPLE_TOKEN_SHA256, f"{path}: {digest} is not listed"


def test_example_tokens_read_as_fake() -> None:
    # The example policy names its token in a comment; the token says it is not for use.
    text = (REPO / "policies" / "example.yaml").read_text()
    tokens = re.findall(r'sha256\("([^"]+)"\)', text)
    assert tokens
    for token in tokens:
        assert "example" in token and "demo-only" in token
        assert hashlib.sha256(token.encode()).hexdigest() in EXAMPLE_TOKEN_SHA256
    # The old, guessable ones stay refused for anyone who copied them before.
    for old in ("123456", "arb-bot-token"):
        assert hashlib.sha256(old.encode()).hexdigest() in EXAMPLE_TOKEN_SHA256


@pytest.mark.parametrize("token", ["123456", "example-market-maker-token-demo-only", "test"])
def test_loader_refuses_example_token_naming_file_and_client(tmp_path: Path, token: str) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    (tmp_path / "a.yaml").write_text("version: 1\nclients: {}\n")
    (tmp_path / "desk.yaml").write_text(
        f"version: 1\nclients:\n  copied-bot:\n    token_sha256: {digest}\n"
        "    allow: [{venue: coinex, paths: ['/v2/**']}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_policies(tmp_path)
    assert info.value.file.endswith("desk.yaml")
    assert info.value.field == "clients.copied-bot.token_sha256"
    assert "example token" in info.value.message
    # Offline tools (policy test / explain) and the demo may read the examples.
    assert "copied-bot" in load_policies(tmp_path, allow_example_tokens=True).clients


def test_shipped_example_policy_is_refused_by_check_and_serve(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path, REPO / "policies")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "example.yaml" in err and "clients.market-maker.token_sha256" in err
    # serve in its own process (it configures logging for the process): refused before listening
    served = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config)], capture_output=True, timeout=60
    )
    assert served.returncode == 2
    assert "clients.market-maker.token_sha256: uses a published example token" in served.stderr.decode()


def test_check_without_policies_names_the_directory(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "etc" / "policies"
    config = _config(tmp_path, missing)
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "mount" in err
    missing.mkdir(parents=True)  # an empty mount: still refused, still named
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "no policy files" in err


def test_a_reload_that_brings_an_example_token_is_refused(tmp_path: Path) -> None:
    from proxy.app import create_app
    from proxy.credentials.memory import MemoryStore
    from proxy.reload import Reloader
    from proxy.settings import load_settings

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text("version: 1\nclients:\n  r: {loopback: true}\n")
    settings = load_settings(_config(tmp_path, policies), environ={})
    app = create_app(settings, store=MemoryStore())
    reloader = Reloader(app.pipeline, settings)
    digest = hashlib.sha256(b"example-arb-bot-token-demo-only").hexdigest()
    (policies / "q.yaml").write_text(f"version: 1\nclients:\n  copied: {{token_sha256: {digest}}}\n")
    assert reloader.reload() is False
    assert "copied" not in app.pipeline.policies.clients
    assert app.pipeline.policies.by_token.get(digest) is None
