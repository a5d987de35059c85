"""Token hashes printed in this repository (examples, README, docs): never valid outside the demo.

Anyone can read these tokens, so a policy that still carries one (an example copied into
production, or the image's old built-in policy) would let anyone in. ``load_policies``
refuses them unless its caller is the demo or an offline tool (``policy test``/``explain``).
Every example token reads as fake (``example-…-demo-only``); the older, guessable ones stay
listed for anyone who copied them before. ``tests/unit/test_example_tokens.py`` checks that
every hash in the shipped examples is listed here.
"""

from __future__ import annotations

# sha256(token) -> where the token is printed
EXAMPLE_TOKEN_SHA256: dict[str, str] = {
    "c4c207750c6bc375e63849c3b56df840ccdbafbcd9a84125c79d5ea604c65966": (
        'policies/example.yaml: "example-market-maker-token-demo-only"'
    ),
    "4300c0ebb7e6d28bcc4e85f481386524efa3f5610a9a980767f6c00cc5cb95b6": (
        'policies/example.yaml: "example-arb-bot-token-demo-only"'
    ),
    "b21cd99f8b91d68c81e8ca97ce9c14a6463119210eec2274ab647cf582e970ce": (
        'policies/example.yaml: "example-perp-bot-token-demo-only"'
    ),
    # Earlier examples, still refused for anyone who copied them.
    "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92": 'old policies/example.yaml: "123456"',
    "7b200e02036e91d6866b657be8ea0f37b0aed8bf87d71ae4d52c1a2005d28319": (
        'old policies/example.yaml: "arb-bot-token"'
    ),
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": 'README: "test"',
}


def example_token(digest: str | None) -> str | None:
    """Where the token behind ``digest`` is printed, if it is one of the repo's examples."""
    return None if digest is None else EXAMPLE_TOKEN_SHA256.get(digest)
