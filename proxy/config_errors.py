"""Startup errors for bad config or policy files: always name the file and the field."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConfigError(Exception):
    def __init__(self, file: str | Path, field: str, message: str) -> None:
        self.file = str(file)
        self.field = field
        self.message = message
        super().__init__(f"{self.file}: {field}: {message}" if field else f"{self.file}: {message}")


def from_validation_error(file: str | Path, error: ValidationError, prefix: str = "") -> ConfigError:
    """The first validation problem as a ConfigError; the rest are appended to the message."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        problems.append((location, item["msg"]))
    field, message = problems[0]
    if len(problems) > 1:
        message += "; also " + "; ".join(f"{loc}: {msg}" for loc, msg in problems[1:])
    return ConfigError(file, field, message)
