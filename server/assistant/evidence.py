"""Evidence: what one check stage found about a proposal, in the shape the API shows and stores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Stage = Literal["stack", "compile", "parse", "modules", "syntax", "lint", "safety", "check", "compare"]
Status = Literal["passed", "warning", "failed", "skipped", "running"]
PLAYBOOK_STAGES: tuple[Stage, ...] = ("parse", "modules", "syntax", "lint", "safety")
STACK_STAGES: tuple[Stage, ...] = ("stack", "compile", *PLAYBOOK_STAGES)


@dataclass
class Evidence:
    """``detail`` is plain words for people (and for the model when it repairs); ``data`` is structured."""

    stage: Stage
    status: Status
    detail: str
    duration_ms: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """A failed stage keeps the proposal from passing (and from being saved)."""
        return self.status == "failed"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Checked:
    """The outcome of the stages on one attempt: the content as checked (lint's autofix applied)."""

    content: str
    evidence: list[Evidence]

    @property
    def passed(self) -> bool:
        return not any(item.blocks for item in self.evidence)

    @property
    def failed_stages(self) -> list[str]:
        return [item.stage for item in self.evidence if item.blocks]

    def problems(self) -> str:
        """What failed, as the text a repair request sends back to the model."""
        return "\n".join(f"- {item.stage}: {item.detail}" for item in self.evidence if item.blocks)


class Timer:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


@contextmanager
def timed() -> Iterator[Timer]:
    yield Timer()


@dataclass
class StackChecked(Checked):
    """A stack's outcome: ``content`` is the definition as given, ``playbook`` what it compiled to."""

    target: str = ""
    name: str = ""
    playbook: str = ""


def skipped(stages: tuple[Stage, ...], because: Stage) -> list[Evidence]:
    """The evidence of stages that did not run because an earlier one failed."""
    return [Evidence(stage, "skipped", f"not run: the {because} stage failed") for stage in stages]
