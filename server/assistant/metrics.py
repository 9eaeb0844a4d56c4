"""Prometheus metrics of the assistant: requests, tokens, errors by code, time to first token, stages."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class AssistantMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.requests = Counter(
            "windflow_assistant_requests", "Requests sent to the LLM provider, by job", ["job"], registry=registry
        )
        self.tokens = Counter(
            "windflow_assistant_tokens", "Tokens sent and received, by direction", ["direction"], registry=registry
        )
        self.errors = Counter(
            "windflow_assistant_errors", "Assistant turns that ended in an error, by code", ["code"], registry=registry
        )
        self.first_token = Histogram(
            "windflow_assistant_first_token_seconds",
            "Time from the request to the model's first token",
            registry=registry,
            buckets=TTFT_BUCKETS,
        )
        self.stage = Histogram(
            "windflow_assistant_stage_seconds",
            "Duration of each evidence stage",
            ["stage"],
            registry=registry,
            buckets=STAGE_BUCKETS,
        )

    def tokens_used(self, tokens_in: int, tokens_out: int) -> None:
        self.tokens.labels("in").inc(tokens_in)
        self.tokens.labels("out").inc(tokens_out)
