"""Issue 17's cheaper access-log formatting and request ids keep their output: the same
JSON line for the same record, each line stamped with its own second, and request ids
that are 32 random hex digits."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from proxy.errors import choose_request_id
from proxy.logs import JsonFormatter


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "signing_proxy.access", "msg": "request", "levelno": 20})
    record.levelname = "INFO"
    record.created, record.msecs = created, (created - int(created)) * 1000
    record.__dict__.update(extra)
    return record


def test_each_line_carries_its_own_second_and_fields_in_order() -> None:
    formatter = JsonFormatter()
    times = [1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5, 1_699_999_999.0]  # the last goes back
    lines = [json.loads(formatter.format(_record(t, status=200, path=Path("/x")))) for t in times]
    assert [line["ts"] for line in lines] == [
        "2023-11-14T22:13:20.250Z",
        "2023-11-14T22:13:20.750Z",
        "2023-11-14T22:13:21.500Z",
        "2023-11-14T22:13:19.000Z",
    ]
    assert list(lines[0]) == ["ts", "level", "logger", "msg", "status", "path"]
    assert lines[0]["path"] == "/x" and lines[0]["level"] == "info"  # not JSON: written as str()


def test_generated_request_ids_are_32_random_hex_digits() -> None:
    ids = {choose_request_id(None) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert re.fullmatch(r"[0-9a-f]{32}", choose_request_id("bad id with spaces"))
    assert choose_request_id("trace-42") == "trace-42"


def test_odd_extra_keys_are_formatted_or_skipped_never_raise() -> None:
    line = json.loads(JsonFormatter().format(_record(1_700_000_000.0, **{"": "empty", "_private": 1})))
    assert line[""] == "empty" and "_private" not in line
