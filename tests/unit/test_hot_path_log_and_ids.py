"""Issue 17's cheaper access-log formatting and request ids keep their output: the same
JSON line for the same record, each line stamped with its own second, and request ids
that are 32 random hex digits. The request line is still a ``logging`` record on
``signing_proxy.access``: the one ``Logger.info(msg, extra=...)`` would make."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.edge import ProxyApp
from proxy.errors import choose_request_id
from proxy.logs import JsonFormatter, info_fields
from tests.factories import build_pipeline, simulated
from tests.unit.inprocess import proxy_client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
# The attributes ``logging`` stamps with the time (and the line it was called from).
STAMPS = {"created", "msecs", "relativeCreated", "lineno"}


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Keep]:
    logger = logging.getLogger("signing_proxy.access")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


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


def _both_ways(logger: logging.Logger, fields: dict[str, object]) -> None:
    logger.info("request", extra=fields)
    info_fields(logger, "request", fields)


@pytest.mark.parametrize("callers", [True, False])  # logging.configure() turns the caller lookup off
def test_the_request_record_is_the_one_logger_info_makes(
    kept: Keep, monkeypatch: pytest.MonkeyPatch, callers: bool
) -> None:
    if not callers:
        monkeypatch.setattr(logging, "_srcfile", None)
    fields = {"request_id": "r1", "client": "mm", "status": 200, "error": None, "total_ms": 0.25}
    _both_ways(logging.getLogger("signing_proxy.access"), fields)
    reference, ours = ({k: v for k, v in r.__dict__.items() if k not in STAMPS} for r in kept.records)
    assert list(ours.items()) == list(reference.items())  # the same attributes, in the same order
    assert ours["funcName"] == ("_both_ways" if callers else "(unknown function)")
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in kept.records]
    assert [{k: v for k, v in line.items() if k != "ts"} for line in lines] == [
        {"level": "info", "logger": "signing_proxy.access", "msg": "request", **fields}
    ] * 2


def test_no_record_is_made_below_the_level(kept: Keep) -> None:
    logger = logging.getLogger("signing_proxy.access")
    logger.setLevel(logging.WARNING)
    info_fields(logger, "request", {"status": 200})
    assert kept.records == []


async def test_a_proxied_request_logs_fields_extra_would_accept(kept: Keep) -> None:
    world = simulated(("coinex",))
    app = ProxyApp(build_pipeline(FIXTURES / "basic", world.venues, world.store, world.upstream), 1024)
    async with proxy_client(app) as client:
        response = await client.get(
            "/coinex/main/v2/spot/pending-order", headers={"Proxy-Authorization": "Bearer mm-token"}
        )
    assert response.status_code == 200
    (record,) = kept.records
    assert (record.getMessage(), record.status, record.venue, record.path) == (  # type: ignore[attr-defined]
        "request",
        200,
        "coinex",
        "/v2/spot/pending-order",
    )
    bare = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}  # (pytest's handler adds these)
    fields = {k: v for k, v in record.__dict__.items() if k not in bare}
    assert list(fields) == [
        "request_id", "client", "venue", "account", "method", "path", "decision", "would_deny", "limit",
        "status", "error", "upstream_status", "upstream_ms", "sign_ms", "rate_wait_ms", "total_ms",
    ]  # fmt: skip
    # What info_fields does not check: Logger.makeRecord raises KeyError for a clashing name.
    logger = logging.getLogger("signing_proxy.access")
    logger.makeRecord(logger.name, logging.INFO, "edge.py", 1, "request", (), None, extra=fields)
