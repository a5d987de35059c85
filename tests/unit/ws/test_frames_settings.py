"""Close codes and reasons, and the ``ws_upstream`` / ``websocket:`` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config_errors import ConfigError
from proxy.errors import CredentialsUnavailable, RateLimited
from proxy.settings import load_settings
from proxy.ws.frames import Closed, Frame, fit_reason, for_error
from proxy.ws.limits import ConnectionLimits


@pytest.mark.parametrize(
    ("code", "sent"),
    [
        (1000, 1000),
        (1001, 1001),
        (1005, 1000),
        (1006, 1014),
        (1015, 1014),
        (1004, 1014),
        (3000, 3000),
        (4999, 4999),
        (5000, 1014),
    ],
)
def test_only_sendable_codes_go_on_the_wire(code: int, sent: int) -> None:
    assert Closed.of(code, "r").code == sent


def test_reasons_fit_a_close_frame() -> None:
    assert fit_reason("short") == "short"
    long = fit_reason("é" * 100)  # 200 bytes of UTF-8
    assert len(long.encode()) <= 123 and long.endswith("...") and "\ufffd" not in long


def test_contract_errors_after_the_upgrade_are_4000_plus_status() -> None:
    closed = for_error(CredentialsUnavailable("evedex", "main", "evedex login failed: sign-up answered 401"))
    assert closed.code == 4503
    assert closed.reason.startswith("credentials_unavailable: credentials for evedex/main unavailable")


def test_frames_hide_their_content() -> None:
    assert repr(Frame("secret")) == "<Frame text 6 bytes>"
    assert repr(Frame(b"\x00" * 3)) == "<Frame binary 3 bytes>"


def test_limits_count_per_client_and_per_key() -> None:
    limits = ConnectionLimits(per_client=2, per_key=1)
    first = limits.acquire("a", "coinex/main")
    with pytest.raises(RateLimited, match="account coinex/main"):
        limits.acquire("b", "coinex/main")
    second = limits.acquire("a", "coinex/other")
    with pytest.raises(RateLimited, match="client a"):
        limits.acquire("a", "icrypex/main")
    first.release()
    first.release()  # idempotent
    assert limits.open_streams(client="a") == 1 and limits.open_streams(key="coinex/main") == 0
    second.release()
    assert limits.open_streams() == 0


BASE = """
vault: {url: http://127.0.0.1:8200}
venues:
  coinex: {scheme: coinex, upstream: "https://api.coinex.com", accounts: [main], ws_upstream: "wss://socket.coinex.com"}
  evedex: {scheme: evedex, upstream: "https://trading-api.evedex.com", accounts: [main],
           auth_upstream: "https://auth-api.evedex.com", ws_upstream: "wss://ws.evedex.com"}
  haqqex: {scheme: haqqex, upstream: "https://h.example", accounts: [main]}
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "proxy.yaml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_ws_upstream_and_defaults(tmp_path: Path) -> None:
    settings = _load(tmp_path, BASE)
    assert settings.venues["coinex"].ws_upstream == "wss://socket.coinex.com"
    assert settings.venues["coinex"].options == {}  # not a scheme option
    assert settings.venues["haqqex"].ws_upstream is None
    ws = settings.websocket
    assert (
        ws.max_connections_per_client,
        ws.max_connections_per_key,
        ws.idle_timeout_s,
        ws.max_frame_bytes,
    ) == (
        16,
        8,
        300,
        1_048_576,
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (('"wss://socket.coinex.com"', '"https://socket.coinex.com"'), "venues.coinex", "ws or wss"),
        (('"wss://socket.coinex.com"', '"wss://socket.coinex.com/v2/spot"'), "venues.coinex", "without path"),
        (('"wss://socket.coinex.com"', '"wss://user:pw@socket.coinex.com"'), "venues.coinex", "credentials"),
        (
            ("accounts: [main]}\n", 'accounts: [main], ws_upstream: "wss://h.example"}\n'),
            "venues.haqqex",
            "no stream login",
        ),
        (("auth_upstream:", "mode: api_key, auth_upstream:"), "venues.evedex", "mode jwt"),
        (
            ("venues:", "websocket: {max_connections_per_client: 0}\nvenues:"),
            "websocket.max_connections_per_client",
            "",
        ),
        (
            ("venues:", "websocket: {max_connections_per_key: -1}\nvenues:"),
            "websocket.max_connections_per_key",
            "",
        ),
        (("venues:", "websocket: {idle_timeout_s: 0}\nvenues:"), "websocket.idle_timeout_s", ""),
        (("venues:", "websocket: {max_frame_bytes: 99999999}\nvenues:"), "websocket.max_frame_bytes", ""),
        (("venues:", "websocket: {max_frames: 1}\nvenues:"), "websocket.max_frames", ""),
    ],
)
def test_bad_stream_config_names_the_field(
    tmp_path: Path, change: tuple[str, str], field: str, message: str
) -> None:
    text = BASE.replace(*change)
    assert text != BASE
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    assert error.value.field.startswith(field)
    assert message in error.value.message
