"""nginx configurations: the venue stand-in and the ``proxy_pass`` baseline.

Both run one worker (``worker_processes 1``) in the foreground with every path inside the
run's work directory, so nothing is written to ``/etc`` or ``/var``. Keep-alive is made
effectively unlimited on both sides: nginx's default ``keepalive_requests 1000`` would
otherwise make every client reconnect after 1,000 requests, which measures connection set-up
rather than proxying.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.upstream import ANSWERS, DEFAULT_ANSWER

_COMMON = """\
worker_processes 1;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/{name}-body;
    proxy_temp_path {dir}/{name}-proxy;
    fastcgi_temp_path {dir}/{name}-fastcgi;
    uwsgi_temp_path {dir}/{name}-uwsgi;
    scgi_temp_path {dir}/{name}-scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
{body}
}}
"""


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def _quoted(body: bytes) -> str:
    text = body.decode()
    if "'" in text or "$" in text:
        raise ValueError("canned answers must not contain ' or $ (nginx string syntax)")
    return f"'{text}'"


def upstream_conf(workdir: Path, port: int) -> str:
    """``return 200`` locations answering like a venue (``benchmarks.upstream.ANSWERS``)."""
    locations = [
        f"        location = {path} {{ return 200 {_quoted(body)}; }}" for path, body in ANSWERS.items()
    ]
    locations.append(f"        location / {{ return 200 {_quoted(DEFAULT_ANSWER)}; }}")
    body = "\n".join(
        [
            "    default_type application/json;",
            "    server {",
            f"        listen 127.0.0.1:{port} backlog=4096;",
            *locations,
            "    }",
        ]
    )
    return _COMMON.format(dir=workdir, name="upstream", body=body)


def proxy_pass_conf(workdir: Path, port: int, upstream_port: int) -> str:
    """``/coinex/main/...`` -> the stand-in's ``/...``, over a warm keep-alive pool."""
    body = f"""\
    upstream venue {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /coinex/main/ {{
            proxy_pass http://venue/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Proxy-Authorization "";
        }}
    }}"""
    return _COMMON.format(dir=workdir, name="proxy-pass", body=body)


def command(nginx: str, conf_path: Path, workdir: Path) -> list[str]:
    return [
        nginx,
        "-p",
        str(workdir),
        "-e",
        str(workdir / "nginx-startup.log"),
        "-c",
        str(conf_path),
        "-g",
        "daemon off;",
    ]
