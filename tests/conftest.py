"""Shared fixtures. Integration fixtures (real OpenBao, real sockets) live in
``tests/integration/conftest.py``; everything under ``tests/unit`` runs in-process."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def captured_logs():
    """Every log record of every library at DEBUG, formatted as production formats ours,
    with tracebacks in full (a leak through exception text must show up here too)."""
    import io
    import traceback

    from proxy.logs import JsonFormatter

    class _WithTraceback(JsonFormatter):
        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            if record.exc_info and record.exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            return text

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_WithTraceback())
    loggers = [logging.getLogger(), logging.getLogger("signing_proxy")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
