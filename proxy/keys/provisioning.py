"""What ``signing-proxy keys`` does to Vault: put, rotate, retire and check one account.

KV layout (``<kv_mount>/<kv_prefix>/<venue>/<account>``):

* ``signing: kv``: the scheme's fields, secrets included (``api_key``, ``secret_key``, …).
* ``signing: transit``: the public fields only (``api_key``), plus ``transit_key`` (the
  key's name, so a human reading KV sees where the secret went) and
  ``transit_key_version`` (the version the proxy signs with). Pinning the version in the
  same KV write as the API key makes a rotation switch both together when a proxy's KV
  cache refreshes; until then it keeps signing with the previous version, which stays
  usable until ``keys retire``.

Retiring too early breaks replicas: each caches the KV secret (and so the pin) for
``vault.cache_ttl_s``, and keeps serving it ``vault.stale_grace_s`` longer while Vault is
unreachable. Every pin written here is recorded in the KV path's ``custom_metadata``
(``transit_key_version`` and the KV version that moved it); ``retire`` refuses until
``cache_ttl_s + stale_grace_s`` have passed since that KV version was created (Vault's
``created_time``; for a pin written by hand, the current KV version's), unless forced.

Every write into Transit is proved before KV points at it: Vault computes a MAC or
signature of a fixed probe with the new version, and it must equal (HMAC) or verify
against (RSA) what the venue's secret gives locally. After a Transit-mode write, earlier
KV versions that held key material are destroyed: KV v2 keeps history, and a secret left
in an old version is still readable. Results and errors name fields, never values.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import hvac
import hvac.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_der_private_key

from proxy.credentials.transit import KV_KEY_FIELD, KV_VERSION_FIELD
from proxy.credentials.transit_admin import KeyInfo, TransitAdmin, TransitAdminError
from proxy.errors import SigningFailed
from proxy.messages import Credentials
from proxy.signers.base import Signer
from proxy.signers.keyops import Hmac

KV_TRANSIT_KEY = KV_KEY_FIELD
KV_TRANSIT_VERSION = KV_VERSION_FIELD
PIN_MOVED_PIN = "transit_key_version"  # custom_metadata: the pin last written by `keys`
PIN_MOVED_IN = "transit_pin_kv_version"  # custom_metadata: the KV version that wrote it
PROBE = b"signing-proxy: Transit import self-test"


class KeysError(Exception):
    """A refusal or failure of a keys command; the message names fields, never values."""


@dataclass(frozen=True, slots=True)
class Account:
    """A configured account and how it signs. ``transit_key`` is ``None`` in KV mode."""

    venue: str
    name: str
    signer: Signer
    transit_key: str | None

    @property
    def label(self) -> str:
        return f"{self.venue}/{self.name} ({'transit' if self.transit_key else 'kv'})"


class KeyVault:
    """The KV and Transit calls the keys commands make, on one hvac client."""

    def __init__(self, client: hvac.Client, kv_mount: str, kv_prefix: str, transit_mount: str) -> None:
        self.client = client
        self.kv_mount = kv_mount
        self.kv_prefix = kv_prefix.strip("/")
        self.transit = TransitAdmin(client, transit_mount)

    def path(self, account: Account) -> str:
        tail = f"{account.venue}/{account.name}"
        return f"{self.kv_prefix}/{tail}" if self.kv_prefix else tail

    def read(self, account: Account, version: int | None = None) -> dict[str, str] | None:
        try:
            answer = self.client.secrets.kv.v2.read_secret_version(
                path=self.path(account),
                version=version,
                mount_point=self.kv_mount,
                raise_on_deleted_version=False,
            )
        except hvac.exceptions.InvalidPath:
            return None
        data = (answer.get("data") or {}).get("data")
        return None if data is None else {str(k): str(v) for k, v in data.items()}

    def write(self, account: Account, fields: Mapping[str, str]) -> int:
        answer = self.client.secrets.kv.v2.create_or_update_secret(
            path=self.path(account), secret=dict(fields), mount_point=self.kv_mount
        )
        return int(answer["data"]["version"])

    def metadata(self, account: Account) -> dict[str, Any]:
        try:
            answer = self.client.secrets.kv.v2.read_secret_metadata(
                path=self.path(account), mount_point=self.kv_mount
            )
        except hvac.exceptions.InvalidPath:
            return {}
        return dict(answer.get("data") or {})

    def record_pin(self, account: Account, pin: int, kv_version: int) -> None:
        """Note which KV version moved the pin: ``retire`` counts the replicas' cache from it."""
        # A POST with custom_metadata alone: hvac's update_metadata would also reset the
        # operator's delete_version_after. The map is replaced whole: keep others' entries.
        custom = dict(self.metadata(account).get("custom_metadata") or {})
        custom.update({PIN_MOVED_PIN: str(pin), PIN_MOVED_IN: str(kv_version)})
        self.client.adapter.post(
            f"/v1/{self.kv_mount}/metadata/{self.path(account)}", json={"custom_metadata": custom}
        )

    def pin_moved_at(self, account: Account, pin: str | None) -> float | None:
        """Unix time the current pin was written to KV (Vault's clock); None: no KV secret."""
        meta = self.metadata(account)
        versions = meta.get("versions") or {}
        custom = meta.get("custom_metadata") or {}
        version = str(meta.get("current_version", ""))
        if pin is not None and custom.get(PIN_MOVED_PIN) == pin and custom.get(PIN_MOVED_IN) in versions:
            version = custom[PIN_MOVED_IN]
        created = (versions.get(version) or {}).get("created_time")
        return None if not created else _rfc3339(created)

    def versions_holding(
        self, account: Account, names: tuple[str, ...], below: int | None = None
    ) -> list[int]:
        """Earlier KV versions that hold any of ``names`` (or whose data was only soft-deleted)."""
        try:
            meta = self.client.secrets.kv.v2.read_secret_metadata(
                path=self.path(account), mount_point=self.kv_mount
            )
        except hvac.exceptions.InvalidPath:
            return []
        found = []
        for key, info in (meta["data"].get("versions") or {}).items():
            version = int(key)
            if (below is not None and version >= below) or info.get("destroyed"):
                continue
            data = self.read(account, version)
            if data is None or any(name in data for name in names):  # soft-deleted: undeletable, so count it
                found.append(version)
        return sorted(found)

    def destroy(self, account: Account, versions: list[int]) -> None:
        if versions:
            self.client.secrets.kv.v2.destroy_secret_versions(
                path=self.path(account), versions=versions, mount_point=self.kv_mount
            )


def checked_fields(account: Account, fields: Mapping[str, str], transit: bool) -> Credentials:
    """The fields a put or rotate needs: all the scheme requires, nothing unknown, none empty."""
    known = set(account.signer.required_fields) | {"api_key"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise KeysError(
            f"unknown field(s) {', '.join(unknown)} "
            f"({account.signer.scheme} takes {', '.join(sorted(known))})"
        )
    needed = (
        account.signer.required_fields
        if not transit
        else (*account.signer.public_fields(), *account.signer.key_fields)
    )
    missing = [name for name in needed if not fields.get(name)]
    if missing:
        raise KeysError(f"missing field(s) {', '.join(missing)}")
    creds = Credentials(fields)
    problem = key_problem(account.signer, creds)
    if problem is not None:
        raise KeysError(f"{account.label}: {problem}")
    return creds


def key_problem(signer: Signer, creds: Credentials) -> str | None:
    """Why the signer could not use these fields (the signer's own parse); ``None`` if it can.

    Names the field, never the value: ``SigningFailed`` messages are built that way.
    """
    try:
        signer.validate_secret(creds)
    except SigningFailed as error:
        return error.message
    return None


def put_kv(vault: KeyVault, account: Account, fields: Mapping[str, str]) -> list[str]:
    if account.transit_key:
        raise KeysError(
            f"{account.label} signs with Transit: pass --transit (writing key material to KV would put "
            "it back where the proxy and KV readers can read it)"
        )
    creds = checked_fields(account, fields, transit=False)
    version = vault.write(account, {name: creds[name] for name in sorted(creds.names())})
    return [f"{account.label}: KV version {version} written with fields {', '.join(sorted(creds.names()))}"]


def put_transit(vault: KeyVault, account: Account, fields: Mapping[str, str], key: str) -> list[str]:
    """Import the key as a new non-exportable Transit key, then point KV at it."""
    creds = checked_fields(account, fields, transit=True)
    key_type, material = _transit_material(account, creds)
    if vault.transit.key(key) is not None:
        raise KeysError(
            f"Transit key {key} already exists: use `signing-proxy keys rotate` for a new version"
        )
    info = _admin(lambda: vault.transit.import_key(key, key_type, material))
    _prove(vault.transit, account, creds, key, info.latest_version)
    notes = [
        f"{account.label}: Transit key {key} v{info.latest_version} imported ({info.type}, non-exportable)"
    ]
    return notes + _write_public(vault, account, creds, key, info.latest_version)


def rotate(vault: KeyVault, account: Account, fields: Mapping[str, str]) -> list[str]:
    """A new version (Transit) or a new KV version; the previous one stays usable."""
    if account.transit_key is None:
        creds = checked_fields(account, fields, transit=False)
        version = vault.write(account, {name: creds[name] for name in sorted(creds.names())})
        return [
            f"{account.label}: KV version {version} written; proxies switch when their cache refreshes "
            "(vault.cache_ttl_s); earlier KV versions stay in KV history"
        ]
    creds = checked_fields(account, fields, transit=True)
    key_type, material = _transit_material(account, creds)
    existing = vault.transit.key(account.transit_key)
    if existing is None:
        raise KeysError(f"no Transit key {account.transit_key}: use `signing-proxy keys put --transit` first")
    if existing.type != key_type:
        raise KeysError(f"Transit key {account.transit_key} is {existing.type}, this secret needs {key_type}")
    info = _admin(lambda: vault.transit.import_version(account.transit_key or "", material))
    _prove(vault.transit, account, creds, account.transit_key, info.latest_version)
    notes = [
        f"{account.label}: Transit key {account.transit_key} v{info.latest_version} imported; "
        f"v{info.latest_version - 1} stays usable until "
        f"`signing-proxy keys retire --below {info.latest_version}`"
    ]
    return notes + _write_public(vault, account, creds, account.transit_key, info.latest_version)


def retire(
    vault: KeyVault,
    account: Account,
    below: int,
    hold_s: float = 0,
    force: bool = False,
    now: float | None = None,
) -> list[str]:
    """Stop versions below ``below`` from signing. ``hold_s`` (the config's ``cache_ttl_s +
    stale_grace_s``): how long after the pin moved a replica may still sign with the old one."""
    if account.transit_key is None:
        raise KeysError(
            f"{account.label}: retire is for Transit keys; KV history is managed with `bao kv destroy`"
        )
    info = vault.transit.key(account.transit_key)
    if info is None:
        raise KeysError(f"no Transit key {account.transit_key}")
    pinned = (vault.read(account) or {}).get(KV_TRANSIT_VERSION)
    if not 1 <= below <= info.latest_version or (pinned and pinned.isdigit() and int(pinned) < below):
        raise KeysError(
            f"--below must be 1..{info.latest_version} and not above the version KV pins ({pinned or 'none'})"
        )
    notes = []
    moved_at = vault.pin_moved_at(account, pinned)
    elapsed = None if moved_at is None else (time.time() if now is None else now) - moved_at
    if elapsed is not None and elapsed < hold_s:
        wait = hold_s - elapsed
        if not force:
            raise KeysError(
                f"{account.label}: KV moved the pin to v{pinned or '?'} {elapsed:.0f} s ago; replicas may "
                f"sign with a cached older version for vault.cache_ttl_s + vault.stale_grace_s = "
                f"{hold_s:.0f} s: retry in {wait:.0f} s, or pass --force once every replica has re-read KV"
            )
        notes.append(
            f"{account.label}: forced {wait:.0f} s early: a replica still caching an older pin fails "
            "one request per account (503 credentials_unavailable), then re-reads KV"
        )
    _admin(lambda: vault.transit.retire_below(account.transit_key or "", below))
    done = f"{account.label}: Transit key {account.transit_key} versions below v{below} can no longer sign"
    return [*notes, done]


def check(vault: KeyVault, account: Account) -> list[str]:
    """Problems with one account for its mode; empty when it is complete."""
    fields = vault.read(account)
    if fields is None:
        return ["no secret at the KV path"]
    if account.transit_key is None:
        missing = Credentials(fields).missing(account.signer.required_fields)
        if missing:
            return [f"KV secret is missing field(s) {', '.join(missing)}"]
        problem = key_problem(account.signer, Credentials(fields))
        return [problem] if problem else []
    problems = []
    missing = Credentials(fields).missing(account.signer.public_fields())
    if missing:
        problems.append(f"KV secret is missing field(s) {', '.join(missing)}")
    public = {name: value for name, value in fields.items() if name not in account.signer.key_fields}
    problem = key_problem(account.signer, Credentials(public))
    if problem:
        problems.append(problem)
    leaked = [name for name in account.signer.key_fields if name in fields]
    if leaked:
        problems.append(f"KV still holds {', '.join(leaked)}: remove it with `signing-proxy keys rotate`")
    old = vault.versions_holding(account, account.signer.key_fields)
    if old and not leaked:
        problems.append(f"earlier KV version(s) {', '.join(map(str, old))} hold key material: destroy them")
    if fields.get(KV_TRANSIT_KEY) not in (None, account.transit_key):
        problems.append(f"KV names Transit key {fields[KV_TRANSIT_KEY]}, the config {account.transit_key}")
    return problems + _check_key(
        vault.transit.key(account.transit_key), account, fields.get(KV_TRANSIT_VERSION)
    )


def _check_key(info: KeyInfo | None, account: Account, pinned: str | None) -> list[str]:
    if info is None:
        return [f"no Transit key {account.transit_key}"]
    problems = []
    expected = "hmac" if "secret_key" in account.signer.key_fields else "rsa-"
    if not info.type.startswith(expected):
        problems.append(f"Transit key {info.name} is {info.type}, the scheme needs {expected.rstrip('-')}")
    if info.exportable or info.allow_plaintext_backup:
        problems.append(f"Transit key {info.name} is exportable or allows plaintext backup: re-import it")
    if pinned is not None and not (
        pinned.isdigit() and info.min_encryption_version <= int(pinned) <= info.latest_version
    ):
        problems.append(
            f"KV pins version {pinned}, usable versions are "
            f"{max(1, info.min_encryption_version)}..{info.latest_version}"
        )
    return problems


def _write_public(vault: KeyVault, account: Account, creds: Credentials, key: str, version: int) -> list[str]:
    public = {name: creds[name] for name in creds.names() if name not in account.signer.key_fields}
    written = vault.write(account, {**public, KV_TRANSIT_KEY: key, KV_TRANSIT_VERSION: str(version)})
    vault.record_pin(account, version, written)
    old = vault.versions_holding(account, account.signer.key_fields, below=written)
    vault.destroy(account, old)
    notes = [
        f"{account.label}: KV version {written} holds "
        f"{', '.join(sorted(public))}, {KV_TRANSIT_KEY}, {KV_TRANSIT_VERSION}"
    ]
    if old:
        notes.append(
            f"{account.label}: destroyed earlier KV version(s) {', '.join(map(str, old))} "
            "that held key material"
        )
    return notes


def _transit_material(account: Account, creds: Credentials) -> tuple[str, bytes]:
    if not account.signer.supports_transit:
        raise KeysError(f"scheme {account.signer.scheme} cannot keep its key in Transit")
    try:
        return account.signer.transit_key(creds)
    except SigningFailed as error:
        raise KeysError(f"{account.label}: {error.message}") from None


def _prove(admin: TransitAdmin, account: Account, creds: Credentials, key: str, version: int) -> None:
    """Vault's result with the new version must match what the venue's secret gives locally."""
    key_type, material = account.signer.transit_key(creds)
    if key_type == "hmac":
        expected = account.signer.local_key_op(Hmac(PROBE), creds)  # exactly the venue's HMAC
        got = _admin(lambda: admin.hmac(key, PROBE, version))
        if not hmac.compare_digest(expected, got):
            raise KeysError(f"self-test failed: Transit key {key} v{version} does not MAC like the secret")
        return
    signature = _admin(lambda: admin.sign_pss(key, PROBE, version))
    private = load_der_private_key(material, password=None)
    try:
        assert isinstance(private, RSAPrivateKey)
        # The exact salt the venue expects: PSS.MAX_LENGTH when signing, emLen - hLen - 2
        # (222 for RSA-2048). Verifying with MAX_LENGTH itself would accept any salt length.
        salt = (private.key_size + 7) // 8 - hashes.SHA256.digest_size - 2
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
        private.public_key().verify(signature, PROBE, pss, hashes.SHA256())
    except InvalidSignature:
        raise KeysError(f"self-test failed: Transit key {key} v{version} signature does not verify") from None


def _rfc3339(text: str) -> float:
    """Vault's ``2026-12-04T22:30:01.123456789Z`` (nanoseconds) as Unix time."""
    head, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(head + "+00:00").timestamp()
    return stamp + (float("0." + fraction) if fraction.isdigit() else 0.0)


def _admin(call: Any) -> Any:
    try:
        return call()
    except TransitAdminError as error:
        raise KeysError(str(error)) from None
