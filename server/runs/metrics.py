"""Prometheus metrics of the run engine: runs by status, queue depth, durations, events and lag."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from server.runs.events import SinkStats

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class RunMetrics:
    """Registered on the app's registry (``/metrics``), or on its own in a separate worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.registry = registry
        self.runs = Gauge(
            "windflow_runs", "Runs by status (refreshed by each recovery pass)", ["status"], registry=registry
        )
        self.finished_total = Counter(
            "windflow_runs_finished", "Runs finished here, by status", ["status"], registry=registry
        )
        self.queue_depth = Gauge("windflow_run_queue_depth", "Runs waiting in the queue", registry=registry)
        self.duration = Histogram(
            "windflow_run_duration_seconds",
            "Wall time from claim to final status",
            registry=registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.events = Counter("windflow_run_events_ingested", "Runner events stored and published", registry=registry)
        self.lag = Histogram(
            "windflow_run_event_lag_seconds",
            "Event lag: from Ansible's callback to stored, and from stored to published",
            ["stage"],
            registry=registry,
            buckets=LAG_BUCKETS,
        )
        self.recovery = Counter(
            "windflow_run_recovery", "Runs handled by recovery passes, by outcome", ["outcome"], registry=registry
        )

    def finished(self, status: str, seconds: float) -> None:
        self.finished_total.labels(status).inc()
        self.duration.observe(seconds)

    def ingested(self, stats: SinkStats, count: int) -> None:
        self.events.inc(count)
        for stored, published in stats.lags:
            self.lag.labels("stored").observe(max(0.0, stored))
            self.lag.labels("published").observe(max(0.0, published))
        stats.lags.clear()  # keeps memory flat on long runs
