"""A private copy of the test stack's config, served by a real ``signing-proxy serve``
child process: for behaviour that lives in the server itself (socket identity, read
deadlines, connection caps), which only the real process shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from proxy.dev.serve_process import ServeProcess
from proxy.dev.stack import LocalStack


def served_copy(
    stack: LocalStack,
    tmp_path: Path,
    *,
    clients: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> ServeProcess:
    """The stack's config and policies plus ``clients`` (a policy file of their own) and
    ``config`` (top-level keys merged one level deep), ready to ``start()``."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for path in (stack.dir / "policies").glob("*.yaml"):
        (policies / path.name).write_text(path.read_text())
    if clients:
        (policies / "zz-extra.yaml").write_text(yaml.safe_dump({"version": 1, "clients": clients}))
    data = yaml.safe_load((stack.dir / "proxy.yaml").read_text())
    data["policies"] = str(policies)
    for key, value in (config or {}).items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(data))
    return ServeProcess(path, env={"SIGNING_PROXY_WATCH_INTERVAL_S": "0", **(env or {})})
