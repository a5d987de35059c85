"""The ccxt snippet: one text for the README and the demo banner (it is run live in
``tests/integration/test_ccxt_e2e.py::test_the_printed_snippet_runs_as_is``)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from types import SimpleNamespace

import ccxt

from proxy.dev.ccxt_snippet import CCXT_VERSION, README_TOKEN, README_URL, ccxt_snippet
from proxy.dev.demo import _print_keep_running

ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_the_snippet_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    snippet = ccxt_snippet(README_URL, "coinex", "main", README_TOKEN)
    assert "## Using it from CCXT\n" in readme
    assert f"```python\n{snippet}```" in readme


def test_snippet_pins_the_tested_ccxt_and_configures_the_client() -> None:
    assert ccxt.__version__ == CCXT_VERSION  # the version the test extra installs
    snippet = ccxt_snippet("http://10.0.0.5:8080/", "coinex", "main", "tok-123")
    # Run it up to the network call: the client it builds is what the README promises.
    namespace: dict = {}
    exec(snippet.replace('print(exchange.fetch_balance()["total"])', ""), namespace)
    exchange = namespace["exchange"]
    assert exchange.urls["api"] == {
        "public": "http://10.0.0.5:8080/coinex/main",
        "private": "http://10.0.0.5:8080/coinex/main",
    }
    assert exchange.headers == {"Proxy-Authorization": "Bearer tok-123"}
    assert exchange.apiKey == "placeholder" and exchange.secret == "placeholder"


def test_keep_running_banner_prints_a_ready_snippet() -> None:
    stack = SimpleNamespace(
        proxy_url="http://127.0.0.1:40123",
        account="main",
        clients={"trader": SimpleNamespace(token="trader-abc")},
        dir=Path("/tmp/x"),
        url=lambda venue, path: f"http://127.0.0.1:40123/{venue}/main{path}",
        admin_url="http://127.0.0.1:40124",
        token_file=Path("/tmp/x/vault-token"),
        vault=SimpleNamespace(url="http://127.0.0.1:40125", log_path=Path("/tmp/x/bao.log")),
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_keep_running(stack)  # type: ignore[arg-type]
    assert ccxt_snippet("http://127.0.0.1:40123", "coinex", "main", "trader-abc") in out.getvalue()
