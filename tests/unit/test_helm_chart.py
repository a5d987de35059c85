"""The Helm chart, checked without helm (not installable here): every plain YAML file
parses, the values' proxy config and policies pass the product's own validators, every
``.Values.x.y`` a template uses exists, and the pod is hardened."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.policy.loader import load_policies
from proxy.settings import build_settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "signing-proxy"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
TEMPLATES = sorted((CHART / "templates").glob("*.yaml")) + sorted((CHART / "templates").glob("*.tpl"))


@pytest.mark.parametrize("name", ["Chart.yaml", "values.yaml", "sidecar-example.yaml"])
def test_plain_yaml_parses(name: str) -> None:
    assert isinstance(yaml.safe_load((CHART / name).read_text()), dict)


def test_values_config_is_a_valid_proxy_config() -> None:
    settings = build_settings(dict(VALUES["config"]), CHART / "values.yaml", environ={})
    assert settings.listen.host == "0.0.0.0"  # central mode listens on the pod IP
    assert settings.vault.auth.method == "kubernetes"
    assert settings.vault.auth.token_path == VALUES["vaultToken"]["path"]


def test_values_policies_load(tmp_path: Path) -> None:
    for name, policy in VALUES["policies"].items():
        (tmp_path / name).write_text(yaml.safe_dump(policy))
    policies = load_policies(tmp_path, venues=VALUES["config"]["venues"])
    assert "market-maker" in policies.clients


def _lookup(path: str) -> object:
    node: object = VALUES
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, f".Values.{path} is not in values.yaml"
        node = node[part]
    return node


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_values_exist(template: Path) -> None:
    used = set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", template.read_text()))
    for path in used:
        _lookup(path)


def test_pod_is_hardened() -> None:
    text = (CHART / "templates" / "deployment.yaml").read_text()
    for required in (
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        'capabilities: {drop: ["ALL"]}',
        "seccompProfile: {type: RuntimeDefault}",
        "path: /readyz",
        "path: /healthz",
    ):
        assert required in text
    assert VALUES["serviceAccount"]["automountToken"] is False
    assert VALUES["terminationGracePeriodSeconds"] > 10  # longer than the proxy's drain timeout


def test_sidecar_listens_on_loopback() -> None:
    pod = yaml.safe_load((CHART / "sidecar-example.yaml").read_text())
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == "signing-proxy")
    env = {e["name"]: e["value"] for e in proxy["env"]}
    assert env["SIGNING_PROXY_LISTEN__HOST"] == "127.0.0.1"
