"""Issue 19 item 6: a reload never loads a half-written file, and never blocks the loop.

* A policy file written in place in two halves, with a pause between them, is read by the
  watcher in between: the trailing deny rule must never vanish from the live policy.
* Building the new config (300 clients) runs in another thread: the event loop keeps
  turning while it runs (a ticker on the loop advances while the build is paused inside).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from proxy import reload as reload_module
from proxy.app import create_app
from proxy.credentials.memory import MemoryStore
from proxy.identity import token_sha256
from proxy.reload import Reloader
from proxy.settings import load_settings

CONFIG = """
vault: {url: "http://127.0.0.1:1"}
policies: ./policies
watch_interval_s: 0.02
reload_settle_s: 0.4
venues:
  coinex: {scheme: coinex, upstream: "http://127.0.0.1:9", accounts: [main]}
"""
HEAD = f"""version: 1
clients:
  bot:
    token_sha256: {token_sha256("bot-token-for-settle-tests")}
    allow:
      - {{venue: coinex, paths: ["/**"]}}
"""
TAIL = """    deny:
      - {venue: "*", paths: ["**/withdraw*"]}
"""


def _setup(tmp_path: Path, config: str = CONFIG, policy: str = HEAD + TAIL) -> tuple[Reloader, object]:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(policy)
    (tmp_path / "proxy.yaml").write_text(config)
    settings = load_settings(tmp_path / "proxy.yaml", environ={})
    app = create_app(settings, store=MemoryStore())
    return Reloader(app.pipeline, settings), app.pipeline


async def test_a_file_written_in_two_halves_is_never_loaded_half_written(tmp_path: Path, monkeypatch) -> None:
    reloader, pipeline = _setup(tmp_path)
    swapped = []  # every policy set the reloader ever put in force
    original_swap = Reloader._swap

    def recording_swap(self, built):
        swapped.append(built.policies)
        return original_swap(self, built)

    monkeypatch.setattr(Reloader, "_swap", recording_swap)
    watcher = asyncio.create_task(reloader.watch(reloader.settings.watch_interval_s))
    try:
        path = tmp_path / "policies" / "p.yaml"
        changed = HEAD.replace('"/**"', '"/v2/**"')  # a real change, so a reload must happen
        with path.open("w") as file:  # in place: truncate, write half, pause, write the rest
            file.write(changed)
            file.flush()
            await asyncio.sleep(0.2)  # the watcher polls every 20 ms: it sees the half file
            file.write(TAIL)
        for _ in range(200):
            if swapped:
                break
            await asyncio.sleep(0.02)
    finally:
        watcher.cancel()
    assert swapped, "the complete file was reloaded"
    for policies in swapped:
        assert [rule.summary for rule in policies.clients["bot"].deny], "the deny rule vanished"
    assert pipeline.policies.clients["bot"].allow[0].paths[0].match("/v2/x")
    assert pipeline.policies.clients["bot"].deny


async def test_a_file_that_keeps_changing_is_not_loaded_until_it_settles(tmp_path: Path) -> None:
    reloader, pipeline = _setup(tmp_path)
    before = pipeline.policies
    path = tmp_path / "policies" / "p.yaml"

    async def scribble() -> None:
        for index in range(6):
            path.write_text(HEAD + f"# edit {index}\n")  # valid, but the deny rule is missing
            await asyncio.sleep(0.1)  # under the 0.4 s settle time
        path.write_text(HEAD.replace('"/**"', '"/v2/**"') + TAIL)

    writer = asyncio.create_task(scribble())
    await asyncio.sleep(0.01)
    assert await reloader.reload_async() is True  # waits for the file to stop changing
    await writer
    assert pipeline.policies is not before
    assert pipeline.policies.clients["bot"].deny
    assert pipeline.policies.clients["bot"].allow[0].paths[0].match("/v2/x")


async def test_the_build_runs_off_the_event_loop(tmp_path: Path, monkeypatch) -> None:
    clients = "".join(
        f"  c{i}:\n    token_sha256: {token_sha256(f'client-{i}')}\n"
        f"    allow: [{{venue: coinex, paths: ['/v2/a{i}/**', '/v2/b{i}/*']}}]\n"
        for i in range(300)
    )
    config = CONFIG.replace("reload_settle_s: 0.4", "reload_settle_s: 0")
    reloader, pipeline = _setup(tmp_path, config, "version: 1\nclients:\n" + clients)
    loop_thread = threading.get_ident()
    ticks = 0
    ticked = threading.Event()

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks > 3:
                ticked.set()
            await asyncio.sleep(0)

    real_load = reload_module.load_policies
    seen: dict[str, object] = {}

    def load_policies(*args, **kwargs):
        seen["thread"] = threading.get_ident()
        start = ticks
        ticked.clear()
        # Inside the build: the loop must keep turning (bounded wait, not a timing assertion).
        seen["loop_turned"] = ticked.wait(timeout=3) and ticks > start
        return real_load(*args, **kwargs)

    monkeypatch.setattr(reload_module, "load_policies", load_policies)
    (tmp_path / "policies" / "p.yaml").write_text(
        "version: 1\nclients:\n" + clients.replace("/v2/a", "/v3/a")
    )
    task = asyncio.create_task(ticker())
    try:
        assert await reloader.reload_async() is True
    finally:
        task.cancel()
    assert seen["thread"] != loop_thread
    assert seen["loop_turned"] is True
    assert len(pipeline.policies.clients) == 300
    assert pipeline.policies.clients["c7"].allow[0].paths[0].match("/v3/a7/x")


@pytest.mark.parametrize("settle", ["-1", "61"])
def test_settle_time_is_validated(tmp_path: Path, settle: str) -> None:
    from proxy.config_errors import ConfigError

    (tmp_path / "proxy.yaml").write_text(CONFIG.replace("reload_settle_s: 0.4", f"reload_settle_s: {settle}"))
    with pytest.raises(ConfigError, match="reload_settle_s"):
        load_settings(tmp_path / "proxy.yaml", environ={})
