"""Issue 19 item 4: the Redis password comes from a file (a Secret volume), never from the
config file a ConfigMap holds."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from proxy.config_errors import ConfigError
from proxy.settings import build_settings

VENUES = {"coinex": {"scheme": "coinex", "upstream": "https://api.coinex.com", "accounts": ["main"]}}


def _settings(tmp_path: Path, rate_limits: dict, environ: dict | None = None):
    raw = {"vault": {"url": "http://127.0.0.1:8200"}, "venues": VENUES, "rate_limits": rate_limits}
    return build_settings(raw, tmp_path / "proxy.yaml", environ=environ or {})


def test_password_file_reaches_the_redis_client_not_the_config(tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text(
        "p@ss:w/rd %41\n"
    )  # characters a URL would misread, and a newline from `kubectl create secret`
    settings = _settings(
        tmp_path, {"backend": "redis", "url": "redis://redis.infra:6379/2", "password_file": str(secret)}
    )
    url = settings.rate_limits.url
    assert url is not None
    client = redis.asyncio.Redis.from_url(url)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["password"] == "p@ss:w/rd %41"
    assert kwargs["host"] == "redis.infra" and kwargs["port"] == 6379 and kwargs["db"] == 2
    assert "p@ss" not in repr(settings) and "p@ss" not in repr(settings.rate_limits)


def test_password_file_from_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-env")
    env = {"SIGNING_PROXY_RATE_LIMITS__PASSWORD_FILE": str(secret)}
    settings = _settings(tmp_path, {"backend": "redis", "url": "rediss://r:6380/0"}, env)
    assert urlsplit(settings.rate_limits.url).password == "from-env"


@pytest.mark.parametrize(
    ("url", "file_text", "words"),
    [
        ("redis://:inline@r:6379/0", "pw", "password in rate_limits.url and password_file"),
        ("redis://r:6379/0", None, "cannot read"),
        ("redis://r:6379/0", "\n", "is empty"),
    ],
)
def test_password_file_problems_name_the_field_never_the_value(
    tmp_path: Path, url: str, file_text: str | None, words: str
) -> None:
    secret = tmp_path / "pw"
    if file_text is not None:
        secret.write_text(file_text)
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, {"backend": "redis", "url": url, "password_file": str(secret)})
    assert info.value.field == "rate_limits.password_file"
    assert words in info.value.message
    assert "inline" not in str(info.value)


def test_password_file_keeps_user_and_ipv6_host(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret")
    settings = _settings(
        tmp_path, {"backend": "redis", "url": "redis://proxy@[::1]:6379/1", "password_file": "pw"}
    )
    parts = urlsplit(settings.rate_limits.url)
    assert (parts.username, parts.password, parts.hostname, parts.port, parts.path) == (
        "proxy",
        "s3cret",
        "::1",
        6379,
        "/1",
    )
