"""Lint the Helm chart with Helm's own library (PyPI ``helm-python-sdk``: Helm's Go SDK, no
helm binary), as shipped and once per overlay below: non-default values a deployer sets
(AppRole auth, a shared Redis, sidecar-style loopback listening, the monitoring toggles).
The same library renders the chart in ``tests/unit/helm_render.py``.

Run by ``.ci/run``: ``python scripts/helm_lint.py helm/signing-proxy``. Exit 1 on any lint
warning or error.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import helm_python
import yaml

SEVERITY = {1: "INFO", 2: "WARNING", 3: "ERROR"}
OVERLAYS: dict[str, dict[str, Any]] = {
    "approle+redis": {
        "config": {
            "vault": {
                "auth": {
                    "method": "approle",
                    "role_id": "signing-proxy",
                    "secret_id_file": "/var/run/secrets/vault/secret-id",
                }
            },
            "rate_limits": {"backend": "redis", "url": "redis://redis.trading.svc:6379/0"},
        },
        "networkPolicy": {
            "egress": {"redis": {"peers": [{"podSelector": {"matchLabels": {"app": "redis"}}}]}}
        },
    },
    "sidecar-loopback": {
        "replicaCount": 1,
        "config": {
            "listen": {"host": "127.0.0.1", "port": 8080},
            "admin": {"host": "127.0.0.1", "port": 9901},
        },
        "podDisruptionBudget": {"enabled": False},
    },
    "monitoring-on": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else value
    return out


def lint(chart: Path, values: dict[str, Any]) -> list[str]:
    result = helm_python.lint(str(chart), values=values, namespace="trading")
    problems = [
        f"{SEVERITY.get(m['severity'], m['severity'])} {m['path']}: {m.get('error') or ''}"
        for m in result.get("messages") or []
        if m["severity"] >= 2
    ]
    if result.get("errors"):
        problems.append(f"lint errors: {result['errors']}")
    # Lint logs a template's `fail` at INFO and passes: render too, where it raises.
    try:
        with helm_python.Chart.load(str(chart)) as loaded:
            loaded.render(values, name="lint", namespace="trading")
    except helm_python.HelmError as error:
        problems.append(f"render failed: {str(error)[:500]}")
    return problems


def main(chart: Path) -> int:
    failed = False
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    runs: list[tuple[str, dict[str, Any] | None]] = [("defaults", None)]
    runs += [(name, overlay) for name, overlay in OVERLAYS.items()]
    for name, overlay in runs:
        problems = lint(chart, defaults if overlay is None else merge(defaults, overlay))
        print(f"helm lint {chart} [{name}]: " + ("ok" if not problems else "; ".join(problems)))
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "helm/signing-proxy")))
