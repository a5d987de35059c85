"""Structured JSON logs, one object per line.

Redaction is by construction: the code that logs receives names, codes and timings,
never key material, signatures or client tokens (``pipeline.Audit`` has no field that
could hold one). The formatter prints the message and the ``extra`` fields only; it
never formats exception text from libraries, only the exception's class.

``info_fields`` is ``Logger.info(msg, extra=fields)`` for the one line per request: the same
record reaches the same handlers, made without ``makeRecord``'s per-key clash check (the
request log's keys are fixed; ``tests/unit/test_hot_path_log_and_ids.py`` checks them once).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}


# One encoder for every line: ``json.dumps(..., default=str)`` builds a new one per call.
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    # (second, its text) of the last line: lines in one second share it. One tuple, so a
    # line logged from another thread never pairs one second with another's text.
    _stamped: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second, stamp = self._stamped
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamped = (second, stamp)
        line: dict[str, Any] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        standard = _STANDARD
        line.update({k: v for k, v in record.__dict__.items() if k not in standard and k[:1] != "_"})
        if record.exc_info and record.exc_info[0] is not None:
            # Class only: library exception text can quote request data or key bytes.
            line["exc_type"] = record.exc_info[0].__name__
        return _ENCODER.encode(line)


def info_fields(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """``logger.info(msg, extra=fields)``: the record ``Logger._log`` would make (caller, if
    ``logging`` looks callers up; then ``fields`` as attributes, in order), through
    ``logger.handle``. ``fields`` must not name a ``LogRecord`` attribute (``extra`` raises
    ``KeyError`` for one; this does not look)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    if logging._srcfile:
        # stacklevel 2: our caller, as ``Logger.info`` reports the caller of ``info``.
        path, line, func, _ = logger.findCaller(False, 2)
    else:  # configure() switched caller lookup off, as Logger._log then reports
        path, line, func = "(unknown file)", 0, "(unknown function)"
    record = logger.makeRecord(logger.name, logging.INFO, path, line, msg, (), None, func)
    record.__dict__.update(fields)
    logger.handle(record)


def configure(level: str = "INFO", stream: Any = None) -> None:
    # The logging HOWTO's "optimization" switches: our lines carry no caller, thread or
    # process fields, so don't pay for collecting them on every record.
    logging._srcfile = None  # type: ignore[attr-defined,unused-ignore]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("signing_proxy")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
