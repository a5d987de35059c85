"""``signing-proxy keys`` against a real OpenBao: put (KV and Transit BYOK) from standard
input, check, rotate, retire; and the Vault policies shipped in ``docs/vault-policies``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
import yaml

from proxy.cli import main
from proxy.dev.devvault import DevVault
from proxy.keys.provisioning import Account, KeyVault, put_transit
from proxy.signers import SIGNERS
from proxy.sim.credentials import demo_credentials

POLICIES = Path(__file__).resolve().parents[2] / "docs" / "vault-policies"
COINEX = {"api_key": "AK-desk", "secret_key": "coinex-secret-" + "5" * 50}
COINEX_V2 = {"api_key": "AK-desk-2", "secret_key": "coinex-secret-" + "7" * 50}
INVEX = demo_credentials("invex")
EVEDEX = demo_credentials("evedex")
SECRETS = [COINEX["secret_key"], COINEX_V2["secret_key"], INVEX["private_key"], EVEDEX["wallet_private_key"]]


@pytest.fixture(scope="module")
def vault() -> Iterator[DevVault]:
    with DevVault() as running:
        running.enable_transit()
        yield running


@pytest.fixture(scope="module")
def config(vault: DevVault, tmp_path_factory: pytest.TempPathFactory) -> str:
    venues = {
        "coinex": {
            "scheme": "coinex",
            "upstream": "https://api.coinex.com",
            "accounts": [{"name": "desk", "signing": "transit"}, "kvdesk", "later"],
        },
        "invex": {
            "scheme": "invex",
            "upstream": "https://invex.ir",
            "accounts": [{"name": "desk", "signing": "transit"}],
        },
        "evedex": {
            "scheme": "evedex",
            "upstream": "https://x.evedex.com",
            "auth_upstream": "https://a.evedex.com",
            "accounts": ["main"],
        },
    }
    path = tmp_path_factory.mktemp("keys") / "proxy.yaml"
    path.write_text(yaml.safe_dump({"vault": {"url": vault.url}, "venues": venues}))
    return str(path)


@pytest.fixture
def keys(vault: DevVault, config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``signing-proxy keys …`` with ``stdin`` as standard input; returns (code, out, err)."""
    monkeypatch.setenv("VAULT_TOKEN", vault.root_token)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(["keys", *argv[:1], "--config", config, *argv[1:]])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        for secret in SECRETS:
            assert secret not in out + err
        return code, out, err

    return run


def _lines(fields: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in fields.items())


def _kv(vault: DevVault, path: str) -> dict[str, str]:
    answer = vault.client().secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=False)
    return answer["data"]["data"] or {}


def _mac(vault: DevVault, key: str, version: int | None = None) -> bytes:
    body: dict[str, object] = {"input": "cHJvYmU="}  # "probe"
    if version is not None:
        body["key_version"] = version
    answer = vault.client().adapter.post(f"/v1/transit/hmac/{key}/sha2-256", json=body)
    return base64.b64decode(answer["data"]["hmac"].split(":")[2])


def test_put_transit_from_stdin_imports_a_non_exportable_key(keys, vault: DevVault) -> None:
    # A migration: the account had its secret in KV; after the import no KV version holds it.
    vault.put_secret("signing-proxy/coinex/desk", COINEX)
    code, out, _ = keys("put", "--venue", "coinex", "--account", "desk", "--transit", stdin=_lines(COINEX))
    assert code == 0, out
    assert "Transit key signing-proxy-coinex-desk v1 imported (hmac, non-exportable)" in out
    assert "destroyed earlier KV version(s) 1" in out
    assert _kv(vault, "signing-proxy/coinex/desk") == {
        "api_key": "AK-desk",
        "transit_key": "signing-proxy-coinex-desk",
        "transit_key_version": "1",
    }
    assert (
        _mac(vault, "signing-proxy-coinex-desk")
        == hmac.new(COINEX["secret_key"].encode(), b"probe", hashlib.sha256).digest()
    )
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.client().adapter.get("/v1/transit/export/hmac-key/signing-proxy-coinex-desk")


def test_put_kv_and_invex_transit_then_check_is_clean(keys, vault: DevVault) -> None:
    assert keys("put", "--venue", "coinex", "--account", "kvdesk", stdin=_lines(COINEX))[0] == 0
    assert keys("put", "--venue", "coinex", "--account", "later", stdin=_lines(COINEX))[0] == 0
    code, out, _ = keys("put", "--venue", "invex", "--account", "desk", "--transit", stdin=_lines(INVEX))
    assert code == 0 and "(rsa-2048, non-exportable)" in out
    assert keys("put", "--venue", "evedex", "--account", "main", stdin=_lines(EVEDEX))[0] == 0
    code, out, _ = keys("check")
    assert code == 0, out
    assert "keys coinex/desk (transit): ok" in out and "keys coinex/kvdesk (kv): ok" in out
    assert "keys invex/desk (transit): ok" in out and "keys evedex/main (kv): ok" in out


def test_check_finds_key_material_left_in_kv_and_rotate_removes_it(keys, vault: DevVault) -> None:
    vault.put_secret("signing-proxy/coinex/desk", {**COINEX, "transit_key_version": "1"})
    code, out, _ = keys("check")
    assert code == 1 and "keys coinex/desk (transit): FAILED: KV still holds secret_key" in out
    code, out, _ = keys("rotate", "--venue", "coinex", "--account", "desk", stdin=_lines(COINEX_V2))
    assert code == 0, out
    assert "v2 imported; v1 stays usable until `signing-proxy keys retire --below 2`" in out
    assert _kv(vault, "signing-proxy/coinex/desk")["transit_key_version"] == "2"
    assert _kv(vault, "signing-proxy/coinex/desk")["api_key"] == "AK-desk-2"
    assert keys("check")[0] == 0
    # Both versions sign until told otherwise: proxies with a cached KV secret still use v1.
    assert _mac(vault, "signing-proxy-coinex-desk", 1) != _mac(vault, "signing-proxy-coinex-desk", 2)
    # Right after the rotation a replica may still cache the v1 pin: --force says "I know".
    code, out, _ = keys("retire", "--venue", "coinex", "--account", "desk", "--below", "2", "--force")
    assert code == 0 and "versions below v2 can no longer sign" in out
    with pytest.raises(hvac.exceptions.InvalidRequest):
        _mac(vault, "signing-proxy-coinex-desk", 1)
    assert _mac(vault, "signing-proxy-coinex-desk") == _mac(vault, "signing-proxy-coinex-desk", 2)


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (
            ("put", "--venue", "coinex", "--account", "desk"),
            _lines(COINEX),
            "signs with Transit: pass --transit",
        ),
        (("put", "--venue", "coinex", "--account", "desk", "--transit"), _lines(COINEX), "already exists"),
        (("put", "--venue", "coinex", "--account", "kvdesk"), "api_key=x\n", "missing field(s) secret_key"),
        (
            ("put", "--venue", "coinex", "--account", "kvdesk"),
            _lines(COINEX) + "secrte=1\n",
            "unknown field(s) secrte",
        ),
        (
            ("put", "--venue", "evedex", "--account", "main", "--transit"),
            _lines(EVEDEX),
            "cannot keep its key in Transit",
        ),
        (("put", "--venue", "coinex", "--account", "nobody"), _lines(COINEX), "not an account"),
        (
            ("retire", "--venue", "coinex", "--account", "kvdesk", "--below", "1"),
            "",
            "retire is for Transit keys",
        ),
    ],
)
def test_refusals_name_the_problem(keys, argv: tuple[str, ...], stdin: str, message: str) -> None:
    code, _, err = keys(*argv, stdin=stdin)
    assert code in (1, 2)
    assert message in err, err


def test_the_shipped_vault_policies_allow_signing_but_never_export(vault: DevVault) -> None:
    root = vault.client()
    tokens = {}
    for name in ("signing-proxy", "signing-proxy-keys"):
        root.sys.create_or_update_policy(name=name, policy=(POLICIES / f"{name}.hcl").read_text())
        token = root.auth.token.create(policies=[name])["auth"]["client_token"]
        tokens[name] = hvac.Client(url=vault.url, token=token)
    proxy, team = tokens["signing-proxy"], tokens["signing-proxy-keys"]
    key = "signing-proxy-coinex-acl"
    fields = demo_credentials("coinex")
    account = Account("coinex", "acl", SIGNERS["coinex"](), key)
    put_transit(
        KeyVault(team, "secret", "signing-proxy", "transit"), account, fields, key
    )  # the team can import
    proxy.adapter.post(f"/v1/transit/hmac/{key}/sha2-256", json={"input": "cHJvYmU="})  # the proxy can sign
    proxy.secrets.kv.v2.read_secret_version(path="signing-proxy/coinex/acl", raise_on_deleted_version=True)
    team.adapter.post(f"/v1/transit/keys/{key}/config", json={"min_decryption_version": 1})
    refused = [
        lambda: proxy.adapter.get(f"/v1/transit/export/hmac-key/{key}"),
        lambda: proxy.adapter.post(f"/v1/transit/keys/{key}/config", json={"exportable": True}),
        lambda: proxy.adapter.get(f"/v1/transit/keys/{key}"),
        lambda: proxy.secrets.kv.v2.create_or_update_secret(
            path="signing-proxy/coinex/acl", secret={"a": "b"}
        ),
        lambda: team.adapter.post(f"/v1/transit/keys/{key}/config", json={"exportable": True}),
        lambda: team.adapter.get(f"/v1/transit/export/hmac-key/{key}"),
        lambda: team.adapter.get(f"/v1/transit/backup/{key}"),
        lambda: team.adapter.delete(f"/v1/transit/keys/{key}"),
        # The team may note the pin in custom_metadata, never shorten KV history.
        lambda: team.adapter.post("/v1/secret/metadata/signing-proxy/coinex/acl", json={"max_versions": 1}),
    ]
    for attempt in refused:
        with pytest.raises(hvac.exceptions.Forbidden):
            attempt()
    assert root.adapter.get(f"/v1/transit/keys/{key}")["data"]["exportable"] is False


def test_put_transit_for_an_account_still_in_kv_mode_says_to_switch_the_config(keys, vault: DevVault) -> None:
    code, out, _ = keys("put", "--venue", "coinex", "--account", "later", "--transit", stdin=_lines(COINEX))
    assert code == 0, out
    assert "coinex/later (transit): Transit key signing-proxy-coinex-later v1 imported" in out
    assert "the config still says signing: kv; switch it to {name: later, signing: transit}" in out
    assert "destroyed earlier KV version(s) 1 that held key material" in out  # the KV-mode secret


CANARY = "C4NARY7e57"  # a malformed value that must never be printed back
BAD_WALLET = "0x" + "c4" * 31  # 31 bytes: not a secp256k1 key


def test_put_refuses_key_material_the_signer_cannot_parse_naming_the_field(keys, vault: DevVault) -> None:
    """Issue 14 item 10: a bad EVEDEX wallet key is refused at put, not at request time."""
    before = vault.client().secrets.kv.v2.read_secret_metadata(path="signing-proxy/evedex/main")
    code, out, err = keys(
        "put", "--venue", "evedex", "--account", "main", stdin=f"wallet_private_key={BAD_WALLET}\n"
    )
    assert code == 2  # a refusal: one line, exit 2 (issue 15)
    assert "wallet_private_key is not a 32-byte hex secp256k1 key" in err
    assert BAD_WALLET not in out + err and BAD_WALLET[2:] not in out + err
    after = vault.client().secrets.kv.v2.read_secret_metadata(path="signing-proxy/evedex/main")
    assert after["data"]["current_version"] == before["data"]["current_version"]  # nothing written


def test_check_parses_stored_key_material_as_the_signer_will(keys, vault: DevVault) -> None:
    vault.put_secret("signing-proxy/evedex/main", {"wallet_private_key": BAD_WALLET})
    vault.put_secret("signing-proxy/coinex/kvdesk", {"api_key": "AK\r\nx", "secret_key": CANARY})
    code, out, err = keys("check")
    assert code == 1
    assert "keys evedex/main (kv): FAILED: evedex: wallet_private_key is not a 32-byte hex" in out
    assert "keys coinex/kvdesk (kv): FAILED: coinex: api_key contains control characters" in out
    assert CANARY not in out + err and BAD_WALLET[2:] not in out + err
    vault.put_secret("signing-proxy/evedex/main", EVEDEX)
    vault.put_secret("signing-proxy/coinex/kvdesk", COINEX)


def _short_config(config: str, tmp_path: Path, ttl: float, grace: float) -> str:
    raw = yaml.safe_load(Path(config).read_text())
    raw["vault"].update(cache_ttl_s=ttl, stale_grace_s=grace)
    path = tmp_path / f"proxy-{ttl}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_retire_waits_until_no_replica_can_cache_the_old_pin(
    keys, vault: DevVault, config: str, tmp_path: Path
) -> None:
    """Issue 19 item 8: replicas cache the KV pin for cache_ttl_s (+ stale_grace_s while
    Vault is unreachable); retiring the old version before that breaks them."""
    code, out, err = keys("put", "--venue", "invex", "--account", "desk", "--transit", stdin=_lines(INVEX))
    if code != 0:  # already imported by an earlier test in this module
        assert "already exists" in err
    assert keys("rotate", "--venue", "invex", "--account", "desk", stdin=_lines(INVEX))[0] == 0
    pin = int(_kv(vault, "signing-proxy/invex/desk")["transit_key_version"])
    meta = vault.client().secrets.kv.v2.read_secret_metadata(path="signing-proxy/invex/desk")
    custom = meta["data"]["custom_metadata"] or {}
    assert custom.get("transit_key_version") == str(pin)  # when the pin moved is on record
    code, _, err = keys("retire", "--venue", "invex", "--account", "desk", "--below", str(pin))
    assert code == 2
    assert "vault.cache_ttl_s + vault.stale_grace_s" in err and "--force" in err
    assert "1200" in err  # 300 + 900 s with this config
    # The key still signs with the old version: nothing was retired.
    assert (
        vault.client()
        .adapter.post(
            "/v1/transit/sign/signing-proxy-invex-desk/sha2-256",
            json={"input": "cHJvYmU=", "key_version": pin - 1, "signature_algorithm": "pss"},
        )["data"]["signature"]
        .startswith(f"vault:v{pin - 1}:")
    )
    # With a short cache the hold ends: once it has passed, retire goes ahead.
    short = _short_config(config, tmp_path, ttl=0.2, grace=0.1)
    for _ in range(50):
        code, out, err = keys(
            "retire", "--venue", "invex", "--account", "desk", "--below", str(pin), "--config", short
        )
        if code == 0:
            break
        assert "--force" in err
        time.sleep(0.1)
    assert code == 0, err
    assert f"versions below v{pin} can no longer sign" in out


def test_retire_counts_from_a_kv_write_made_outside_the_keys_tool(keys, vault: DevVault) -> None:
    # A pin moved by hand (bao kv put) has no record of ours: the KV version's own time counts.
    code, _, err = keys("put", "--venue", "coinex", "--account", "desk", "--transit", stdin=_lines(COINEX))
    assert code == 0 or "already exists" in err
    latest = int(_kv(vault, "signing-proxy/coinex/desk")["transit_key_version"])
    assert keys("rotate", "--venue", "coinex", "--account", "desk", stdin=_lines(COINEX_V2))[0] == 0
    client = vault.client()
    client.secrets.kv.v2.delete_metadata_and_all_versions(path="signing-proxy/coinex/desk")
    vault.put_secret(
        "signing-proxy/coinex/desk",
        {
            "api_key": "AK-desk-2",
            "transit_key": "signing-proxy-coinex-desk",
            "transit_key_version": str(latest + 1),
        },
    )
    code, _, err = keys("retire", "--venue", "coinex", "--account", "desk", "--below", str(latest + 1))
    assert code == 2 and "--force" in err
