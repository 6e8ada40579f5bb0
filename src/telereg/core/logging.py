"""Structured logging: JSON lines in production, readable lines in a terminal."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from telereg.core.settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def json_line(message: str, *, logger: str) -> str:
    """``message`` as the JSON line the log gives at level INFO: for what a command prints
    itself where a log collector reads its output."""
    record = logging.LogRecord(logger, logging.INFO, "", 0, message, None, None)
    return JsonFormatter().format(record)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
