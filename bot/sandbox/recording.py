"""Observers of what the sandbox says: every REST exchange and every webhook delivery.

Off unless something subscribes (no cost in normal use). The conformance tests subscribe for the
whole test session and check each recorded answer and payload against GitHub's descriptions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Exchange:
    """One REST request and the sandbox's answer, as sent on the wire."""

    method: str
    path: str  # below /api/v3, as requested (percent-encoding kept)
    query: str
    route: str  # the matched route template, "" when none matched
    params: dict[str, str]
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    duration: float
    fault: str = ""  # the fault served on purpose (`faults.py`), "" for none; "drop": no answer (status 0)


@dataclass(frozen=True)
class SentDelivery:
    """One webhook delivery as POSTed."""

    event: str
    action: str | None
    headers: dict[str, str]
    body: bytes
    url: str


_lock = threading.Lock()
_exchange_observers: list[Callable[[Exchange], None]] = []
_delivery_observers: list[Callable[[SentDelivery], None]] = []


def watch(on_exchange: Callable[[Exchange], None] | None = None,
          on_delivery: Callable[[SentDelivery], None] | None = None) -> Callable[[], None]:
    """Subscribe; returns the function that unsubscribes."""
    with _lock:
        if on_exchange:
            _exchange_observers.append(on_exchange)
        if on_delivery:
            _delivery_observers.append(on_delivery)

    def stop() -> None:
        with _lock:
            if on_exchange in _exchange_observers:
                _exchange_observers.remove(on_exchange)
            if on_delivery in _delivery_observers:
                _delivery_observers.remove(on_delivery)

    return stop


def notify_exchange(exchange: Exchange) -> None:
    with _lock:
        observers = list(_exchange_observers)
    for observer in observers:
        observer(exchange)


def notify_delivery(delivery: SentDelivery) -> None:
    with _lock:
        observers = list(_delivery_observers)
    for observer in observers:
        observer(delivery)
