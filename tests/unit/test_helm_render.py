"""The chart rendered by Helm's own engine with non-default values, and what it renders.

``tests.unit.helm_render`` renders with Helm's Go SDK (``helm-python-sdk``); the rendered
``proxy.yaml`` is then validated by the product's own settings loader. Values: the
sidecar-style install (loopback listener, no Deployment replicas, no PDB), AppRole auth
with a shared Redis, and the monitoring toggles.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from proxy.settings import build_settings
from tests.unit.helm_render import CHART, render

DASHBOARD = json.loads((CHART / "dashboards" / "signing-proxy.json").read_text())


def _render(tmp_path: Path, values: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(values)}


def _proxy_yaml(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    config = yaml.safe_load(objects[("ConfigMap", "rel-signing-proxy")]["data"]["proxy.yaml"])
    assert isinstance(config, dict)
    return config


def _container(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod = objects[("Deployment", "rel-signing-proxy")]["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "signing-proxy")


def test_defaults_mount_the_config_directory(tmp_path: Path) -> None:
    objects = _render(tmp_path, {})
    container = _container(objects)
    config = container["args"][container["args"].index("--config") + 1]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert "subPath" not in mount and Path(config).parent == Path(mount["mountPath"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert not any(kind in ("PrometheusRule", "ServiceMonitor") for kind, _ in objects)
    assert ("ConfigMap", "rel-signing-proxy-dashboard") not in objects


def test_sidecar_style_values(tmp_path: Path) -> None:
    objects = _render(
        tmp_path,
        {
            "replicaCount": 0,  # ConfigMaps for sidecars, no central Deployment pods
            "podDisruptionBudget": {"enabled": False},
            "config": {"listen": {"host": "127.0.0.1", "port": 8080}},
        },
    )
    assert objects[("Deployment", "rel-signing-proxy")]["spec"]["replicas"] == 0
    assert not any(kind == "PodDisruptionBudget" for kind, _ in objects)
    settings = build_settings(_proxy_yaml(objects), CHART / "values.yaml", environ={})
    assert settings.listen.host == "127.0.0.1" and settings.admin.host == "0.0.0.0"
    policies = objects[("ConfigMap", "rel-signing-proxy-policies")]["data"]
    assert "market-maker" in yaml.safe_load(policies["desk.yaml"])["clients"]


def test_approle_and_redis_values(tmp_path: Path) -> None:
    auth = {
        "method": "approle",
        "role": None,  # null removes the default's Kubernetes keys (Helm's merge)
        "token_path": None,
        "role_id": "signing-proxy",
        "secret_id_file": "/var/run/secrets/vault/secret-id",
    }
    redis = {"backend": "redis", "url": "redis://redis.trading.svc:6379/0", "on_redis_error": "local"}
    peers = {"redis": {"peers": [{"podSelector": {"matchLabels": {"app": "redis"}}}]}}
    values = {"config": {"vault": {"auth": auth}, "rate_limits": redis}, "networkPolicy": {"egress": peers}}
    objects = _render(tmp_path, values)
    settings = build_settings(_proxy_yaml(objects), CHART / "values.yaml", environ={})
    assert settings.vault.auth.method == "approle" and settings.vault.auth.role_id == "signing-proxy"
    assert settings.vault.auth.secret_id_file == "/var/run/secrets/vault/secret-id"
    assert settings.rate_limits.backend == "redis" and settings.rate_limits.on_redis_error == "local"
    # A config change rolls the pods: the checksum annotation follows the rendered config.
    default = _render(tmp_path, {})
    annotation = "checksum/config"
    ours = objects[("Deployment", "rel-signing-proxy")]["spec"]["template"]["metadata"]["annotations"]
    theirs = default[("Deployment", "rel-signing-proxy")]["spec"]["template"]["metadata"]["annotations"]
    assert ours[annotation] != theirs[annotation]


def test_monitoring_values(tmp_path: Path) -> None:
    objects = _render(
        tmp_path,
        {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "grafanaDashboard": {"enabled": True},
        },
    )
    rule = objects[("PrometheusRule", "rel-signing-proxy")]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert len(alerts) == 6 and alerts["SigningProxyVaultUnreachable"]["for"] == "2m"
    # Prometheus' own templating survives Helm's: the annotation keeps {{ $labels.… }}.
    summary = alerts["SigningProxyAccountCredentialsFailing"]["annotations"]["summary"]
    assert "{{ $labels.venue }}/{{ $labels.account }}" in summary
    assert re.search(r"> 5 \* sum by \(namespace\)", alerts["SigningProxyDenialSpike"]["expr"])
    dashboard = objects[("ConfigMap", "rel-signing-proxy-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["signing-proxy.json"]) == DASHBOARD
    assert objects[("ServiceMonitor", "rel-signing-proxy")]["spec"]["endpoints"][0]["path"] == "/metrics"
