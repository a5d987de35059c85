"""Who is calling: ``Proxy-Authorization: Bearer <token>`` or a loopback sidecar client.

Policies store only the token's SHA-256, so a policy file leaks no credential. A
``loopback: true`` client matches only a request from a loopback peer that carries no
token. Identity is checked before anything else (DESIGN.md): an unauthenticated request
gets 401 whatever its path, so strangers cannot probe which venues exist.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from proxy.errors import Unauthenticated
from proxy.policy.rules import Client, PolicySet


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identify(policies: PolicySet, proxy_authorization: str | None, peer_host: str | None) -> Client:
    if proxy_authorization is not None:
        scheme, _, token = proxy_authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("Proxy-Authorization must be 'Bearer <client token>'")
        client = _by_token(policies, token_sha256(token))
        if client is None:
            raise Unauthenticated()
        return client
    if policies.loopback is not None and is_loopback(peer_host):
        return policies.loopback
    raise Unauthenticated()


def _by_token(policies: PolicySet, digest: str) -> Client | None:
    # The dict lookup is on a hash of the token, so its timing reveals nothing useful;
    # the constant-time compare guards against a future change of the lookup.
    client = policies.by_token.get(digest)
    if client is not None and client.token_sha256 and hmac.compare_digest(client.token_sha256, digest):
        return client
    return None


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
