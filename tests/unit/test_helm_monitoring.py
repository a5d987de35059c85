"""The chart's monitoring (PrometheusRule, Grafana dashboard) and its config mount.

Every metric an alert or a panel queries must be one the proxy exports (names taken from
a real ``Metrics`` registry with the limiter collector, not typed here), each degradation
``/readyz`` reports has an alert, and ``proxy.yaml`` is mounted as a ConfigMap directory
(a ``subPath`` mount never sees ConfigMap updates). ``scripts/helm_lint.py`` (CI) renders
the same templates with Helm's library with the toggles on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.metrics_core import Metric

from proxy.clock import FakeClock
from proxy.metrics import Metrics
from proxy.ratelimit.limiter import LimiterCollector, MemoryLimiter

CHART = Path(__file__).resolve().parents[2] / "helm" / "signing-proxy"
RULES = (CHART / "templates" / "prometheusrule.yaml").read_text()
DASHBOARD = json.loads((CHART / "dashboards" / "signing-proxy.json").read_text())
METRIC = re.compile(r"\bsigning_proxy_[a-z_]+")


def _exported() -> set[str]:
    metrics = Metrics()
    metrics.registry.register(LimiterCollector(MemoryLimiter(FakeClock())))
    names: set[str] = set()
    family: Metric
    for family in metrics.registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "gauge": ("",),
        }[family.type]
        names.update(family.name + s for s in suffixes)
    return names


def _dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]
    exprs += [v["query"] for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_alerts_query_only_exported_metrics() -> None:
    used = set(METRIC.findall(RULES))
    assert used and used <= _exported(), used - _exported()


def test_dashboard_queries_only_exported_metrics() -> None:
    used = set(METRIC.findall(" ".join(_dashboard_exprs())))
    assert used and used <= _exported(), used - _exported()


def test_an_alert_for_each_degradation() -> None:
    alerts = set(re.findall(r"- alert: (\w+)", RULES))
    assert alerts == {
        "SigningProxyVaultUnreachable",
        "SigningProxyAccountCredentialsFailing",
        "SigningProxyVenueCooldown",
        "SigningProxyRedisDown",
        "SigningProxySigningFailures",
        "SigningProxyDenialSpike",
    }
    # The degradation gauges readiness sets are what the Vault/Redis/account alerts read.
    for gauge in ('signing_proxy_dependency_up{dependency="vault"}', 'dependency_up{dependency="redis"}'):
        assert gauge in RULES
    assert "signing_proxy_account_credentials_ok" in RULES


def test_dashboard_shows_the_state_per_venue_and_account() -> None:
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert {"venue", "account", "datasource"} <= variables
    exprs = " ".join(_dashboard_exprs())
    for needed in (
        "signing_proxy_requests_total",
        "signing_proxy_added_latency_seconds_bucket",
        "signing_proxy_upstream_latency_seconds_bucket",
        "signing_proxy_policy_decisions_total",
        "signing_proxy_rate_limited_total",
        "signing_proxy_ratelimit_venue_cooldowns_total",
        "signing_proxy_ready",
        "signing_proxy_account_credentials_ok",
    ):
        assert needed in exprs
    assert 'account=~"$account"' in exprs and 'venue=~"$venue"' in exprs
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_monitoring_is_off_by_default_and_toggleable() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["prometheusRule"]["enabled"] is False and values["grafanaDashboard"]["enabled"] is False
    assert RULES.startswith("{{- if .Values.prometheusRule.enabled }}")
    dashboard = (CHART / "templates" / "grafana-dashboard.yaml").read_text()
    assert dashboard.startswith("{{- if .Values.grafanaDashboard.enabled }}")
    assert '.Files.Get "dashboards/signing-proxy.json"' in dashboard


def _config_mount(container: dict[str, object], volume: str) -> tuple[str, dict[str, str]]:
    args = container["args"]
    assert isinstance(args, list)
    mounts = container["volumeMounts"]
    assert isinstance(mounts, list)
    (mount,) = [m for m in mounts if m["name"] == volume]
    return args[args.index("--config") + 1], mount


def test_config_is_mounted_as_a_directory_so_updates_propagate() -> None:
    # The template is not YAML until rendered: read its two literal lines.
    text = (CHART / "templates" / "deployment.yaml").read_text()
    args = yaml.safe_load(re.search(r"args: (\[.*\])", text).group(1))
    (mount_line,) = re.findall(r"- (\{name: config, .*\})", text)
    mount = yaml.safe_load(mount_line)
    config = args[args.index("--config") + 1]
    assert "subPath" not in mount and Path(config).parent == Path(mount["mountPath"])
    pod = yaml.safe_load((CHART / "sidecar-example.yaml").read_text())
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == "signing-proxy")
    config, mount = _config_mount(sidecar, "proxy-config")
    assert "subPath" not in mount and Path(config).parent == Path(mount["mountPath"])
