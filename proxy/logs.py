"""Structured JSON logs, one object per line.

Redaction is by construction: the code that logs receives names, codes and timings,
never key material, signatures or client tokens (``pipeline.Audit`` has no field that
could hold one). The formatter prints the message and the ``extra`` fields only; it
never formats exception text from libraries, only the exception's class.
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
        for key, value in record.__dict__.items():
            if key not in standard and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # Class only: library exception text can quote request data or key bytes.
            line["exc_type"] = record.exc_info[0].__name__
        return _ENCODER.encode(line)


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
