"""Log output of `paved serve` and `paved worker`: one line per record, as text or JSON.

Every line carries the delivery it is about (`delivery_id`, `event`, `repo`, the pull request `pr` and
the queue's `job` id; `-` for what does not apply), set by `bot.adapters.deliveries.delivery_context`.
In JSON (`PAVED_LOG_FORMAT=json`) each line is one JSON object, for log collectors to index by those
fields; a traceback goes into the object's `error`, so it stays one line. Configured secret values are
masked in the finished line, tracebacks included, so a job that puts a token in an exception message
does not leak it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from bot.adapters.deliveries import DeliveryContextFilter
from bot.settings import Settings

TEXT_FORMAT = ("%(asctime)s %(levelname)s %(name)s [%(delivery_id)s %(event)s %(repo)s pr=%(pr)s job=%(job)s] "
               "%(message)s")


class _Scrubbing(logging.Formatter):
    def __init__(self, fmt: str | None, secrets: tuple[str, ...]) -> None:
        super().__init__(fmt)
        self.secrets = sorted(secrets, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "********")
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class JsonFormatter(_Scrubbing):
    """One JSON object per line: time, level, logger, message, delivery_id, event, repo, pr, job (and error).

    `pr` is the pull request's number, or `-` when the line is about none.
    """

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__(None, secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "delivery_id": getattr(record, "delivery_id", "-"),
            "event": getattr(record, "event", "-"),
            "repo": getattr(record, "repo", "-"),
            "pr": _number(getattr(record, "pr", "-")),
            "job": getattr(record, "job", "-"),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return self.scrub(json.dumps(line, ensure_ascii=False))


def _number(value: object) -> object:
    # Numbers stay numbers in JSON, so that a query for pr=42 need not know how it was written.
    return int(value) if isinstance(value, str) and value.isdigit() else value


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at `settings.log_level` or above to `stream` (default stderr); returns the handler.

    The service owns the process's logging, so the root logger's earlier handlers are replaced.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(DeliveryContextFilter())
    secrets = settings.secret_values()
    handler.setFormatter(JsonFormatter(secrets) if settings.log_format == "json" else _Scrubbing(TEXT_FORMAT, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Huey logs each task it runs, outside any delivery; Paved's own "job started/done" lines say the same
    # with the delivery attached. Its warnings and its consumer's start-up lines still show.
    logging.getLogger("huey").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("huey.consumer").setLevel(root.level)
    return handler
