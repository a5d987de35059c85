"""Key operations as yielded steps, and the two drivers that perform them.

A signer's ``sign_steps`` is a generator (after httpx's ``Auth.auth_flow``): it builds
the venue's prehash, *yields* the one operation that needs the account's key (``Hmac`` or
``RsaPss``), receives the raw MAC or signature bytes, and *returns* the signed request.
The signer never touches key material itself, so the same code signs

* locally (``drive_local``): KV mode, the secret read from Vault's KV engine computes the
  operation in this process -- what ``Signer.sign`` does, at today's speed; and
* remotely (``drive``): Transit mode, Vault computes it and the key never leaves Vault.

Both return identical bytes for an HMAC (it is deterministic); an RSA-PSS signature is
randomised either way and is verified, not compared. Operations carry the message only:
their ``repr`` hides it, because prehashes embed order bodies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

from proxy.messages import OutgoingRequest


# Not frozen: building a frozen dataclass costs ~0.2 µs more, on every KV-mode signature.
@dataclass(slots=True)
class Hmac:
    """HMAC-SHA256 of ``message`` keyed with the account's secret; the result is the raw digest."""

    message: bytes = field(repr=False)


@dataclass(slots=True)
class RsaPss:
    """RSA-PSS over SHA-256 (MGF1-SHA256, maximum salt length) of ``message``; raw signature."""

    message: bytes = field(repr=False)


KeyOp = Hmac | RsaPss
T = TypeVar("T")
A = TypeVar("A")
Steps = Generator[KeyOp, bytes, T]
SignSteps = Generator[KeyOp, bytes, "OutgoingRequest"]
# Performs one operation with a key held elsewhere (Vault Transit); see proxy.credentials.transit.
KeyOperator = Callable[[KeyOp], Awaitable[bytes]]


def drive_local(steps: Steps[T], compute: Callable[[KeyOp, A], bytes], arg: A) -> T:
    """Run ``steps`` to completion, computing each key operation as ``compute(op, arg)``."""
    try:
        op = next(steps)
        while True:
            op = steps.send(compute(op, arg))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def drive(steps: Steps[T], keys: KeyOperator) -> T:
    """Run ``steps`` to completion, awaiting each key operation (Transit: a Vault call)."""
    try:
        op = next(steps)
        while True:
            result = await keys(op)
            op = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        steps.close()  # a failed Vault call leaves the generator suspended: release it now
