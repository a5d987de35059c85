"""The demo's Transit rows (``signing-proxy demo --transit [VENUE]``, docs/transit.md).

The venue's signed steps in the tour already prove that Transit signatures are accepted
(the simulated venue verifies them with the secret it was given). These rows show the
other half: the proxy's KV secret holds no key material, and Vault refuses to export the
key it signs with.
"""

from __future__ import annotations

import asyncio

import hvac.exceptions

from proxy.dev.stack import LocalStack
from proxy.signers import SIGNERS
from proxy.signing_modes import default_transit_key

Row = tuple[str, str, bool, str, int]


async def transit_rows(stack: LocalStack) -> list[Row]:
    rows = []
    for venue in stack.transit:
        rows += await asyncio.to_thread(_rows, stack, venue)
    return rows


def _rows(stack: LocalStack, venue: str) -> list[Row]:
    client = stack.vault.client()
    signer = SIGNERS[stack.venue_schemes[venue]]
    key = default_transit_key(venue, stack.account)
    path = f"signing-proxy/{venue}/{stack.account}"
    fields = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"][
        "data"
    ]
    held = [name for name in signer.key_fields if name in fields]
    kv_ok = not held and fields.get("transit_key") == key
    detail = f"fields: {', '.join(sorted(fields))}" if kv_ok else f"KV holds {', '.join(held) or 'no marker'}"
    rows = [(f"{venue}: KV holds no key material", f"read secret/{path}", kv_ok, detail, 200)]
    kind = "hmac-key" if "secret_key" in signer.key_fields else "signing-key"
    export = (f"{venue}: Transit key cannot be exported", f"GET transit/export/{kind}/{key}")
    try:
        client.adapter.get(f"/v1/transit/export/{kind}/{key}")
    except hvac.exceptions.InvalidRequest:
        return [*rows, (*export, True, "Vault refused: key is not exportable", 400)]
    return [*rows, (*export, False, "Vault exported the key", 200)]
