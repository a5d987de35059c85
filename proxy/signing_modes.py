"""Per-account signing mode: ``kv`` (the secret in Vault's KV engine) or ``transit``.

In a venue's ``accounts`` list an entry is a bare name (KV mode, as before) or a mapping::

    accounts:
      - main                                          # kv
      - {name: desk2, signing: transit}               # Transit key signing-proxy-<venue>-desk2
      - {name: desk3, signing: transit, transit_key: coinex-desk3}

Transit mode (``docs/transit.md``): the proxy reads only the public fields (``api_key``)
from KV and asks Vault to compute the HMAC or RSA-PSS signature with an imported,
non-exportable key. A scheme whose key Transit cannot hold (EVEDEX: secp256k1) stops
startup with the reason, rather than failing on the first request.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from proxy.config_errors import ConfigError
from proxy.signers import SIGNERS

TRANSIT_KEY_NAME = r"^[A-Za-z0-9_.-]{1,128}$"  # one URL path segment: nothing to escape
_NO_TRANSIT = (
    "scheme {scheme} cannot use signing: transit: its key ({why}) is of a type Vault/OpenBao "
    "Transit does not offer (Transit keys: HMAC, RSA, ECDSA P-256/P-384/P-521, Ed25519; no "
    "secp256k1), so this account must keep signing: kv"
)
_WHY = {"evedex": "an Ethereum wallet key on secp256k1"}


class AccountSettings(BaseModel):
    """One account of a venue. A bare name in the YAML list means ``{name: <it>}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # routing.ROUTE_NAME
    signing: Literal["kv", "transit"] = "kv"
    transit_key: str | None = Field(default=None, pattern=TRANSIT_KEY_NAME)

    @model_validator(mode="after")
    def _key_only_for_transit(self) -> AccountSettings:
        if self.transit_key is not None and self.signing != "transit":
            raise ValueError("transit_key is only meaningful with signing: transit")
        return self


def account_entry(value: Any) -> Any:
    """A bare account name is shorthand for ``{name: <it>}`` (KV mode)."""
    return {"name": value} if isinstance(value, str) else value


def check_accounts(accounts: list[AccountSettings], scheme: Any) -> list[AccountSettings]:
    """No duplicate names; ``signing: transit`` only for schemes Transit can sign for."""
    names = [account.name for account in accounts]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"account {duplicates[0]!r} is listed more than once")
    signer = SIGNERS.get(scheme) if isinstance(scheme, str) else None
    for index, account in enumerate(accounts):
        if account.signing == "transit" and signer is not None and not signer.supports_transit:
            why = _WHY.get(signer.scheme, "neither HMAC-SHA256 nor RSA")
            where = f"account {account.name!r} (entry {index})"
            raise ValueError(f"{where}: " + _NO_TRANSIT.format(scheme=scheme, why=why))
    return accounts


def default_transit_key(venue: str, account: str) -> str:
    """``signing-proxy-<venue>-<account>``: the Transit key of an account without ``transit_key``."""
    return f"signing-proxy-{venue}-{account}"


def transit_keys(path: Path | str, venue: str, accounts: list[AccountSettings]) -> dict[str, str]:
    """Account name -> Transit key name, for the ``signing: transit`` accounts of one venue."""
    keys = {}
    for index, account in enumerate(accounts):
        if account.signing != "transit":
            continue
        key = account.transit_key or default_transit_key(venue, account.name)
        if not re.match(TRANSIT_KEY_NAME, key):
            field = f"venues.{venue}.accounts.{index}.transit_key"
            raise ConfigError(path, field, f"the default key name {key!r} is not usable: set transit_key")
        keys[account.name] = key
    return keys
