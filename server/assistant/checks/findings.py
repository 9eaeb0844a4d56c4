"""One thing the safety stage found: which rule, how bad, where, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Literal["failed", "warning"]
    task: str  # the task's name or where it sits; "" for a play or the text as a whole
    line: int | None
    message: str  # names the task and line, says what is wrong and what to do

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
