"""The ready-to-paste ccxt snippet: a CoinEx client pointed at the proxy.

One text for the README ("Using it from CCXT") and the demo's ``--keep-running`` banner;
``tests/integration/test_ccxt_e2e.py`` runs it against a live stack, and a unit test keeps
the README's copy equal to ``ccxt_snippet(README_URL, "coinex", "main", README_TOKEN)``.
"""

from __future__ import annotations

CCXT_VERSION = "4.5.85"  # the last ccxt release that ships coinex (4.5.87+ dropped it)
README_URL = "http://127.0.0.1:8080"
README_TOKEN = "<client token>"


def ccxt_snippet(proxy_url: str, venue: str, account: str, token: str) -> str:
    """Python source that builds ``exchange`` (a ccxt coinex client) and fetches the balance."""
    base = f"{proxy_url.rstrip('/')}/{venue}/{account}"
    return f"""\
import ccxt  # pip install ccxt=={CCXT_VERSION}

base = "{base}"  # http://<proxy>/<venue>/<account>
exchange = ccxt.coinex({{
    "apiKey": "placeholder",  # ccxt wants keys; the proxy strips them and signs with Vault's
    "secret": "placeholder",
    "headers": {{"Proxy-Authorization": "Bearer {token}"}},
}})
exchange.urls["api"] = {{"public": base, "private": base}}
print(exchange.fetch_balance()["total"])
"""
