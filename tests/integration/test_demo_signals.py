"""``signing-proxy demo`` leaves nothing behind (issue 15).

The demo runs as a real process. On SIGTERM, SIGINT and SIGHUP (with and without
``--keep-running``) and when it is killed outright, its OpenBao dev server stops with it;
on the three signals its temporary directory (which holds the Vault root-token file) is
removed. The root token never appears on any process's command line, and the dev server
never writes it to ``~/.vault-token``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _command_lines() -> Iterator[bytes]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield (entry / "cmdline").read_bytes()
            except OSError:
                continue


def _start(home: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(home)
    demo = subprocess.Popen(
        [sys.executable, "-m", "proxy", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen: dict[str, str] = {}
    assert demo.stdout is not None
    wanted = "try:" if "--keep-running" in args else "proxy on "  # the last line we need
    for line in demo.stdout:
        for key in ("stack files", "Vault token file", "Vault (OpenBao dev)", "admin", "logs"):
            if line.strip().startswith(key + ":"):
                seen[key] = line.split(":", 1)[1].strip()
        if line.strip().startswith(wanted):
            break
    else:
        raise AssertionError(f"demo ended before {wanted!r}")
    return demo, seen


def _end(demo: subprocess.Popen[str]) -> None:
    demo.kill()
    demo.wait()
    assert demo.stdout is not None
    demo.stdout.close()


def _bao_of(demo: subprocess.Popen[str]) -> int:
    (bao,) = [pid for pid in _children(demo.pid) if Path(f"/proc/{pid}/comm").read_text().strip() == "bao"]
    return bao


def _wait_gone(pid: int) -> bool:
    for _ in range(200):  # a bounded wait for the kernel to reap it, not a timing assertion
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_keep_running_demo_cleans_up_on_signal(tmp_path: Path, signum: int) -> None:
    demo, seen = _start(tmp_path, "--keep-running")
    try:
        stack_dir = Path(seen["stack files"].split()[0])
        token_file = Path(seen["Vault token file"])
        assert token_file.parent == stack_dir and token_file.exists()
        assert seen["Vault (OpenBao dev)"].startswith("http://127.0.0.1:") and seen["admin"] and seen["logs"]
        bao = _bao_of(demo)
        token = token_file.read_text().strip()
        assert len(token) >= 16
        assert not any(token.encode() in line for line in _command_lines())
        assert not (tmp_path / ".vault-token").exists()
        demo.send_signal(signum)
        assert demo.wait(timeout=60) == 0  # --keep-running: a signal is how it is stopped
        assert _wait_gone(bao)
        assert not stack_dir.exists()
    finally:
        _end(demo)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_demo_cleans_up_on_signal_during_the_tour(tmp_path: Path, signum: int) -> None:
    demo, seen = _start(tmp_path)
    try:
        stack_dir = Path(seen["stack files"].split()[0])
        bao = _bao_of(demo)
        demo.send_signal(signum)
        assert demo.wait(timeout=60) in (0, 128 + signum)  # the tour may have just finished
        assert _wait_gone(bao)
        assert not stack_dir.exists()
    finally:
        _end(demo)


def test_bao_dies_with_a_killed_demo(tmp_path: Path) -> None:
    demo, seen = _start(tmp_path, "--keep-running")
    stack_dir = Path(seen["stack files"].split()[0])
    bao = _bao_of(demo)
    demo.kill()  # no chance to clean up: the kernel's parent-death signal stops bao
    _end(demo)
    assert _wait_gone(bao)
    # What SIGKILL cannot clean: the 0700 directory, whose token now opens nothing.
    assert (stack_dir / "vault-token").exists()
    shutil.rmtree(stack_dir)


def test_no_token_on_the_dev_server_command_line() -> None:
    from proxy.dev.devvault import DevVault

    with DevVault() as vault:
        assert not any(vault.root_token.encode() in line for line in _command_lines())
        assert re.fullmatch(r"[A-Za-z0-9._-]{16,}", vault.root_token)
