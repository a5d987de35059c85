"""The chart's ``config:`` values list the settings a deployer tunes (issues 14 and 19), each
with the product's default and a comment saying what it does.

A setting missing from the values is one a deployer does not know to look for; a value
that differs from the product's default would silently change behaviour. The reference
defaults are the settings models' (``proxy.settings``), read field by field.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from proxy.settings import Settings, build_settings
from tests.unit.helm_render import CHART

VALUES_TEXT = (CHART / "values.yaml").read_text()
CONFIG: dict[str, Any] = yaml.safe_load(VALUES_TEXT)["config"]
TUNABLES = [
    "listen.header_timeout_s",
    "listen.body_timeout_s",
    "listen.max_connections",
    "upstream.max_response_bytes",
    "errors.venue_envelope",
    "readiness",
    "health_interval_s",
    "reload_settle_s",
    "vault.denied_cache_s",
    "vault.relogin_interval_s",
    "rate_limits.session_lock_lease_s",
    "rate_limits.session_lock_wait_s",
]


def _default(path: str) -> Any:
    model: type[BaseModel] = Settings
    *sections, name = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    return model.model_fields[name].default


@pytest.mark.parametrize("path", TUNABLES)
def test_tunable_is_listed_with_the_products_default(path: str) -> None:
    node: Any = CONFIG
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, f"config.{path} is not in values.yaml"
        node = node[part]
    assert node == _default(path)
    name = path.rsplit(".", 1)[-1]
    assert re.search(rf"^\s*{re.escape(name)}: [^#\n]+#\s*\S", VALUES_TEXT, re.M), f"{path}: no comment"


def test_the_listed_config_is_valid() -> None:
    settings = build_settings(dict(CONFIG), CHART / "values.yaml", environ={})
    assert settings.listen.max_connections == 1024 and settings.readiness == "local"
