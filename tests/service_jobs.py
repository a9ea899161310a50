"""Jobs for the service's own tests: they log what arrived and change nothing.

`tests/test_service.py` runs `paved serve` and `paved worker` with these in place of Paved's handlers,
so the queue, the delivery log and the processes are tested without a forge.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.adapters.queue import Work
    from bot.webhook import Delivery

log = logging.getLogger(__name__)


def log_delivery(delivery: Delivery, work: Work) -> None:
    log.info("received %s for %s", delivery.kind, delivery.repository or "no repository")


def log_reconcile(work: Work) -> None:
    log.info("reconcile (%s)", work.trigger)
