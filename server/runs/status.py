"""Run statuses: ``pending → running → successful | failed | canceled | timeout``."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    pending = "pending"
    running = "running"
    successful = "successful"
    failed = "failed"
    canceled = "canceled"
    timeout = "timeout"

    def is_finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({RunStatus.successful, RunStatus.failed, RunStatus.canceled, RunStatus.timeout})
ACTIVE = frozenset({RunStatus.pending, RunStatus.running})

# ansible-runner's final ``Runner.status`` → ours.
FROM_RUNNER = {
    "successful": RunStatus.successful,
    "failed": RunStatus.failed,
    "canceled": RunStatus.canceled,
    "timeout": RunStatus.timeout,
    "error": RunStatus.failed,
}
