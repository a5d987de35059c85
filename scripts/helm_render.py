"""Render the Helm chart with Helm's own library and print the objects it creates (JSON).

``helm-sdkpy`` (Python >= 3.12) bundles Helm's Go library but exposes no ``helm template``
and no dry run; its install action needs a Kubernetes API. So this script serves a small
fake API on loopback (discovery for the kinds the chart uses, empty lists, 404 on reads,
creates echoed back) and records every object Helm creates: exactly what ``helm install``
would send to a cluster. Used by ``tests/integration/test_helm_render.py``.

    python scripts/helm_render.py helm/signing-proxy values.json  > objects.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_sdkpy

# group/version path -> (resource, kind): what the chart renders, and a few kinds it may.
RESOURCES = {
    "/api/v1": [
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("services", "Service"),
        ("serviceaccounts", "ServiceAccount"),
        ("pods", "Pod"),
    ],
    "/apis/apps/v1": [("deployments", "Deployment")],
    "/apis/policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
    "/apis/autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler")],
    "/apis/networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy")],
    "/apis/rbac.authorization.k8s.io/v1": [("roles", "Role"), ("rolebindings", "RoleBinding")],
    "/apis/monitoring.coreos.com/v1": [
        ("servicemonitors", "ServiceMonitor"),
        ("prometheusrules", "PrometheusRule"),
    ],
}
NAMES = {name for kinds in RESOURCES.values() for name, _ in kinds}


class FakeApi(BaseHTTPRequestHandler):
    created: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/version":
            return self._json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"})
        if path == "/api":
            return self._json(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = []
            for prefix in RESOURCES:
                if prefix.startswith("/apis/"):
                    group, version = prefix.removeprefix("/apis/").split("/")
                    gv = {"groupVersion": f"{group}/{version}", "version": version}
                    groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
            return self._json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path in RESOURCES:
            resources = [
                {
                    "name": name,
                    "singularName": "",
                    "namespaced": True,
                    "kind": kind,
                    "verbs": ["create", "get", "list"],
                }
                for name, kind in RESOURCES[path]
            ]
            gv = path.removeprefix("/api/").removeprefix("/apis/")
            return self._json(200, {"kind": "APIResourceList", "groupVersion": gv, "resources": resources})
        if path.rstrip("/").rsplit("/", 1)[-1] in NAMES:  # a list: nothing exists yet
            return self._json(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []})
        return self._json(404, {"kind": "Status", "apiVersion": "v1", "reason": "NotFound", "code": 404})

    def _echo(self, status: int) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = self.headers.get("Content-Type", "application/json")
        if "json" in kind:
            body = json.loads(raw or b"{}")
            if status == 201:
                self.created.append(body)
            return self._json(status, body)
        # Helm's release record goes through the typed client as protobuf: echo it back.
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        self._echo(201)

    def do_PUT(self) -> None:
        self._echo(200)

    def do_PATCH(self) -> None:
        self._echo(200)


def render(chart: str, values: dict[str, Any], release: str = "rel") -> list[dict[str, Any]]:
    FakeApi.created = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [
                            {
                                "name": "fake",
                                "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"},
                            }
                        ],
                        "users": [{"name": "fake", "user": {"token": "fake"}}],
                        "contexts": [
                            {
                                "name": "fake",
                                "context": {"cluster": "fake", "user": "fake", "namespace": "trading"},
                            }
                        ],
                        "current-context": "fake",
                    }
                )
            )
            config = helm_sdkpy.Configuration(namespace="trading", kubeconfig=str(kubeconfig))
            asyncio.run(helm_sdkpy.Install(config).run(release, chart, values, wait=False, timeout=60))
    finally:
        server.shutdown()
    return list(FakeApi.created)


if __name__ == "__main__":
    values = json.loads(Path(sys.argv[2]).read_text()) if len(sys.argv) > 2 else {}
    json.dump(render(sys.argv[1], values), sys.stdout, indent=1)
