"""Lint the Helm chart with Helm's own library (PyPI ``helm-sdkpy``, Python >= 3.12).

There is no ``helm`` binary on the CI machine; ``helm-sdkpy`` bundles Helm's Go library
and exposes its lint action, which also renders every template. The chart is linted as
shipped and then once per overlay below (non-default values a deployer sets: AppRole
auth, a shared Redis, sidecar-style loopback listening, the monitoring toggles), each on
a copy whose values.yaml is the deep merge of the defaults and the overlay.

Run by ``.ci/run`` in its own venv: ``python scripts/helm_lint.py helm/signing-proxy``.
Exit 1 on any lint warning or error.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import helm_sdkpy
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
        }
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


async def lint(chart: Path) -> list[str]:
    result = await helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(str(chart))
    problems = [
        f"{SEVERITY.get(m['Severity'], m['Severity'])} {m['Path']}: {m.get('Err') or ''}"
        for m in result.get("Messages") or []
        if m["Severity"] >= 2
    ]
    if result.get("Errors"):
        problems.append(f"lint errors: {result['Errors']}")
    return problems


def main(chart: Path) -> int:
    failed = False
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    runs: list[tuple[str, dict[str, Any] | None]] = [("defaults", None)]
    runs += [(name, overlay) for name, overlay in OVERLAYS.items()]
    for name, overlay in runs:
        with tempfile.TemporaryDirectory() as tmp:
            copy_of = Path(tmp) / chart.name
            shutil.copytree(chart, copy_of)
            if overlay is not None:
                values = merge(defaults, overlay)
                (copy_of / "values.yaml").write_text(json.dumps(values, indent=2))  # JSON is YAML
            problems = asyncio.run(lint(copy_of))
        print(f"helm lint {chart} [{name}]: " + ("ok" if not problems else "; ".join(problems)))
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "helm/signing-proxy")))
