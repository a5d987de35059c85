"""What a CLI command says when it cannot go on: one line, what failed and why, exit 2.

Vault answers 403 both to a bad token and to a good token without the capability, so
``verify_token`` asks Vault about the token itself (``lookup-self``, allowed by Vault's
default policy) before a command's first real call: a refusal after that is a permission
problem, not an authentication one. Messages carry the Vault address and Vault's own
one-line reason (``vault_reason``), never a token or a secret.
"""

from __future__ import annotations

from typing import Any


class CliFailure(RuntimeError):
    """A command cannot go on; ``str()`` is the one line ``proxy.cli.main`` prints (exit 2)."""


def vault_failure(error: BaseException, url: str) -> CliFailure | None:
    """The one-line failure for an error talking to Vault; None when it is not one."""
    import hvac.exceptions
    import requests

    from proxy.credentials.transit_admin import vault_reason

    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return CliFailure(f"Vault unreachable at {url} ({type(error).__name__})")
    if isinstance(error, requests.RequestException):
        return CliFailure(f"Vault request to {url} failed ({type(error).__name__})")
    if isinstance(error, hvac.exceptions.VaultDown):
        return CliFailure(f"Vault at {url} is sealed or not initialised")
    if isinstance(error, hvac.exceptions.Unauthorized):
        return CliFailure(f"Vault authentication failed at {url}: {vault_reason(error)}")
    if isinstance(error, hvac.exceptions.Forbidden):
        return CliFailure(f"Vault permission denied at {url}: {vault_reason(error)}")
    if isinstance(error, hvac.exceptions.VaultError):
        return CliFailure(f"Vault error at {url}: {vault_reason(error)}")
    return None


def login_failure(error: BaseException, url: str, method: str) -> CliFailure | None:
    """A refused login is an authentication failure, whatever status Vault chose."""
    import hvac.exceptions

    from proxy.credentials.vault_auth import VaultLoginError

    if isinstance(error, VaultLoginError):  # our own message: which credential is missing
        return CliFailure(f"Vault authentication failed at {url}: {error}")
    if isinstance(error, hvac.exceptions.VaultError) and not isinstance(error, hvac.exceptions.VaultDown):
        return CliFailure(f"Vault authentication failed at {url}: {method} login refused")
    return vault_failure(error, url)


def verify_token(client: Any, url: str) -> None:
    """Raise ``CliFailure`` unless Vault is reachable and the client's token is valid."""
    import hvac.exceptions

    if not client.token:
        raise CliFailure(f"Vault authentication failed at {url}: no token (set VAULT_TOKEN or vault.auth)")
    try:
        client.auth.token.lookup_self()
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
        raise CliFailure(f"Vault authentication failed at {url}: the token is invalid or expired") from None
    except Exception as exc:
        failure = vault_failure(exc, url)
        if failure is None:
            raise
        raise failure from None
