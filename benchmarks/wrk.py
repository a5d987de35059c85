"""wrk at fixed concurrency: one thread, C keep-alive connections, a Lua script per request.

The script sets the method, headers and body, and its ``done`` callback prints one
``WRK_JSON {...}`` line with the request count, errors (socket errors and non-2xx/3xx
answers) and latency percentiles from wrk's own histogram (``--latency`` precision).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.configs import RequestSpec

MARKER = "WRK_JSON"

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"socket_errors":%d,"status_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def find_wrk() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    level = "=" * 3
    if f"]{level}]" in text:
        raise ValueError("request text collides with the Lua long-bracket level")
    return f"[{level}[{text}]{level}]"


def lua_script(spec: RequestSpec) -> str:
    lines = [f"wrk.method = {_lua_string(spec.method)}", f"wrk.path = {_lua_string(spec.path)}"]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in spec.headers]
    if spec.body:
        lines.append(f"wrk.body = {_lua_string(spec.body.decode())}")
    return "\n".join(lines) + "\n" + _DONE


def run(
    wrk: str,
    port: int,
    spec: RequestSpec,
    connections: int,
    duration_s: float,
    core: int | None,
    workdir: Path,
) -> dict[str, Any]:
    script = workdir / f"wrk-{abs(hash(spec))}.lua"
    script.write_text(lua_script(spec))
    argv = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    raw = json.loads(procs.run_json_line(argv, core, MARKER, timeout_s=duration_s + 30))
    seconds = raw["duration_us"] / 1e6
    return {
        "mode": "fixed-concurrency",
        "tool": "wrk",
        "requests": raw["requests"],
        "duration_s": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": raw["socket_errors"] + raw["status_errors"],
        "connections": connections,
    }
