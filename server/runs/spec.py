"""What a run is launched with: the options every run stores and relaunch reuses."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

Tag = Annotated[str, msgspec.Meta(pattern=r"^[^\s,]+$", max_length=100)]


class RunOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    credentials: list[uuid.UUID] = msgspec.field(default_factory=list)
    extra_vars: dict[str, Any] = msgspec.field(default_factory=dict)
    limit: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    tags: list[Tag] = msgspec.field(default_factory=list)
    skip_tags: list[Tag] = msgspec.field(default_factory=list)
    check: bool = False
    diff: bool = False
    verbosity: Annotated[int, msgspec.Meta(ge=0, le=5)] = 0
    forks: Annotated[int, msgspec.Meta(ge=1, le=200)] = 5
    timeout: Annotated[int, msgspec.Meta(ge=0, le=86_400, description="seconds; 0 = no limit")] = 3600
