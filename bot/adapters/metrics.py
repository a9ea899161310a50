"""Paved's Prometheus metrics, and what `GET /metrics` answers.

The metrics (all prefixed `paved_`):

- `webhooks_received_total{event, outcome}`: deliveries answered, by GitHub event (`other` for names
  Paved does not subscribe to, so a stranger cannot grow the label set) and by outcome (`accepted`,
  `echo` (Paved's own write coming back, not queued), `coalesced` (a waiting plan job answers it),
  `duplicate`, `unauthorized`, `too_large`,
  `unsupported`, `invalid`, `unavailable`, `error`).
- `queue_depth`: jobs waiting in the queue, read from the queue at each scrape.
- `job_duration_seconds{kind}` (histogram) and `jobs_total{kind, outcome}`: each job run, by delivery
  kind (`pull_request.opened` …, or `reconcile`) and outcome (`done`, `failed`, `waiting`).
- `plans_total{outcome}`: plans a job published, by check conclusion, or `skipped`.
- `applies_total{outcome}`: applies, by outcome (`applied`, `failed`, `up_to_date`, `refused`).
- `github_api_calls_total{status}`: GitHub API requests by HTTP status, and
  `github_rate_limit_remaining{api}`: the remaining rate limit GitHub last reported to this process.

Several processes: `paved worker` runs jobs in processes of their own, so the metrics of those jobs
happen there. Each worker keeps its values in prometheus-client's multiprocess files, in `metrics/`
of its data folder (`share_between_processes`); `paved serve` keeps its own in memory and answers
`/metrics` with its own values plus those of every worker that shares its data folder (counters and
histograms added up, the rate limit the lowest any process last saw). The files of a worker that
stopped are kept, so counters never go backwards; removing the folder while Paved is stopped resets
them. Workers on other machines (or in containers with data folders of their own) are not seen by a
serve replica: give them the serve replica's data folder on a shared volume, one folder per host.
With several serve replicas on one host sharing a data folder, scrape only one of them, or workers'
counts are counted twice.

Recording a metric never fails the work it measures: an error is logged once and otherwise ignored.
prometheus-client is imported only when a metric is first recorded or scraped, so importing this module
stays cheap, and a worker can choose multiprocess mode before any value exists.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_FOLDER = "metrics"
# The events a Paved App subscribes to; anything else is counted as `other`.
KNOWN_EVENTS = frozenset({"pull_request", "pull_request_review", "issue_comment", "check_run", "check_suite",
                          "push", "ping", "installation", "installation_repositories", "merge_group"})
REFUSALS = {400: "invalid", 401: "unauthorized", 413: "too_large", 415: "unsupported", 503: "unavailable"}
APPLY_OUTCOMES = ("applied", "failed", "up to date", "refused")
PLAN_CONCLUSIONS = frozenset({"success", "failure", "neutral", "action_required", "cancelled", "skipped", "waiting"})
# Jobs take from a tenth of a second (a plan with nothing to judge) to minutes (an apply creating repos).
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class _Metrics:
    """The metric objects of this process, built once (see `_metrics`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # A registry of Paved's own: the default one would also export whatever else the process registers.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks = Counter("paved_webhooks_received", "Webhook deliveries answered, by event and outcome.",
                                ["event", "outcome"], registry=r)
        self.job_duration = Histogram("paved_job_duration_seconds", "How long jobs ran, by kind.", ["kind"],
                                      buckets=JOB_BUCKETS, registry=r)
        self.jobs = Counter("paved_jobs", "Jobs run, by kind and outcome.", ["kind", "outcome"], registry=r)
        self.plans = Counter("paved_plans", "Plans published by jobs, by check conclusion (or skipped).",
                             ["outcome"], registry=r)
        self.applies = Counter("paved_applies", "Applies run by jobs, by outcome.", ["outcome"], registry=r)
        self.github_calls = Counter("paved_github_api_calls", "GitHub API requests, by HTTP status.", ["status"],
                                    registry=r)
        # Labelled by API host so that nothing is exported before GitHub has said anything (an unlabelled
        # gauge would show 0, which reads as "out of budget").
        self.rate_limit = Gauge("paved_github_rate_limit_remaining",
                                "Requests left in the current rate-limit window, as GitHub last reported it.",
                                ["api"], multiprocess_mode="mostrecent", registry=r)


_lock = threading.Lock()
_built: _Metrics | None = None
_shared_folder: Path | None = None
_failed_once = False


def _metrics() -> _Metrics:
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                _built = _Metrics()
    return _built


def share_between_processes(folder: Path) -> bool:
    """Keep this process's metric values in multiprocess files in `folder`, for `paved serve` to add up.

    For `paved worker`: call it before any metric is recorded. Returns whether it took effect (it does
    not once a metric exists, nor a second time).
    """
    global _built, _shared_folder
    with _lock:
        if _built is not None:
            if _shared_folder != folder:
                log.warning("metrics of this process stay in memory: they were in use before %s was chosen",
                            folder)
            return False
        folder.mkdir(parents=True, exist_ok=True)
        # prometheus-client picks its value store from this variable, and the multiprocess store names its
        # files after it; setting the store too makes the choice hold even if the library was imported first.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        from prometheus_client import values

        values.ValueClass = values.MultiProcessValue()
        _shared_folder = folder
        _built = _Metrics()
        return True


def _safely(record: Callable[[_Metrics], None]) -> None:
    global _failed_once
    try:
        record(_metrics())
    except Exception:
        # A metric that cannot be written (a vanished multiprocess folder, say) must not fail a job.
        if not _failed_once:
            _failed_once = True
            log.warning("a metric could not be recorded; metrics may be incomplete", exc_info=True)


# -- recording ----------------------------------------------------------------------------------------------


def event_label(event: str | None) -> str:
    """The `event` label for an `X-GitHub-Event` value: itself if Paved subscribes to it, else `other`."""
    return event if event in KNOWN_EVENTS else "other"


def webhook_answered(event: str | None, status: int, *, duplicate: bool = False, echo: bool = False,
                     coalesced: bool = False) -> None:
    """Count a webhook delivery answered with HTTP `status` (`echo`: one of Paved's own writes, not queued;
    `coalesced`: a job waiting in the queue does its work)."""
    if status < 300:
        outcome = "echo" if echo else "coalesced" if coalesced else "duplicate" if duplicate else "accepted"
    else:
        outcome = REFUSALS.get(status, "error" if status >= 500 else "invalid")
    _inc(lambda m: m.webhooks, event_label(event), outcome)


def job_ran(kind: str, outcome: str, seconds: float) -> None:
    """Record one job run of `kind` that took `seconds` and ended `done`, `failed` or `waiting`."""
    def record(m: _Metrics) -> None:
        m.job_duration.labels(kind).observe(seconds)
        m.jobs.labels(kind, outcome).inc()
    _safely(record)


def job_routed(handler: str, result: str) -> None:
    """Count the plan or apply outcome of a routed delivery (`bot.handlers.router.Routed` handler and result)."""
    if handler == "plan":
        # One plan ("published success"), or one per pull request of a re-run check ("published, skipped").
        for part in result.split(", "):
            words = part.split()
            if not words or words[0] not in ("published", "skipped"):
                continue
            conclusion = words[1] if words[0] == "published" and len(words) > 1 else ""
            _inc(lambda m: m.plans, conclusion if conclusion in PLAN_CONCLUSIONS else words[0])
    elif handler == "apply":
        _inc(lambda m: m.applies,
             next((o for o in APPLY_OUTCOMES if result.startswith(o)), "other").replace(" ", "_"))


def _inc(counter: Callable[[_Metrics], Any], *labels: str) -> None:
    _safely(lambda m: counter(m).labels(*labels).inc())


def github_answered(api_url: str, status: int, remaining: str | None) -> None:
    """Count one GitHub API request answered with `status`; `remaining` is its X-RateLimit-Remaining, if any."""
    def record(m: _Metrics) -> None:
        m.github_calls.labels(str(status)).inc()
        if remaining is not None:
            m.rate_limit.labels(urllib.parse.urlsplit(api_url).netloc or api_url).set(float(remaining))
    _safely(record)


# -- answering /metrics ---------------------------------------------------------------------------------------


class _QueueDepth:
    """A collector reading the queue's depth at scrape time; nothing when the queue cannot be read."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            pending = self.depth()
        except Exception as exc:  # the scrape still answers; /readyz says what is wrong
            log.debug("queue depth not read: %s", exc)
            return
        yield GaugeMetricFamily("paved_queue_depth", "Jobs waiting in the queue.", value=pending)


def _merged(families: Iterable[Any]) -> list[Any]:
    """Families of the same name (this process's and the workers') as one: counts added, gauges the lowest."""
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

    merged: dict[str, tuple[Any, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for family in families:
        entry = merged.setdefault(family.name, (family, {}))
        values = entry[1]
        for sample in family.samples:
            if sample.name.endswith("_created"):  # creation times cannot be added up across processes
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in values and family.type == "gauge":
                values[key] = min(values[key], sample.value)
            else:
                values[key] = values.get(key, 0.0) + sample.value
    result = []
    for first, values in merged.values():
        family = Metric(first.name, first.documentation, first.type)
        family.samples = [Sample(name, dict(labels), value) for (name, labels), value in values.items()]
        result.append(family)
    return result


class _Everything:
    def __init__(self, folder: Path, depth: Callable[[], int]) -> None:
        self.folder = folder
        self.depth = _QueueDepth(depth)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector

        own = list(_metrics().registry.collect())
        others: list[Any] = []
        # This process's own values come from memory, so its own files (if it writes any) are left out.
        mine = f"_{os.getpid()}.db"
        if self.folder.is_dir():
            files = [str(p) for p in self.folder.glob("*.db") if not p.name.endswith(mine)]
            try:
                others = list(MultiProcessCollector.merge(files, accumulate=True))
            except Exception as exc:  # a worker's file half-written or removed while read: next scrape
                log.warning("the metrics of other processes in %s could not be read: %s", self.folder, exc)
        yield from _merged([*own, *others])
        yield from self.depth.collect()


def exposition(data_dir: Path, queue_depth: Callable[[], int]) -> bytes:
    """The text `GET /metrics` answers: this process's metrics, the workers' in `data_dir`, the queue's depth."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything(data_dir / METRICS_FOLDER, queue_depth))
    return generate_latest(registry)
