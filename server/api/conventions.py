"""Shared API conventions: paging, list envelopes and documented error responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from server.api.problems import STATUS_CODES, Problem

T = TypeVar("T")
MAX_PAGE_SIZE = 100


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int


@dataclass(frozen=True)
class Paging:
    page: int
    size: int

    def of(self, items: list[T], total: int) -> Page[T]:
        return Page(items=items, total=total, page=self.page, size=self.size)


def provide_paging(
    page: Annotated[int, Parameter(ge=1, le=1_000_000, description="1-based page number")] = 1,
    size: Annotated[int, Parameter(ge=1, le=MAX_PAGE_SIZE, description=f"items per page (1-{MAX_PAGE_SIZE})")] = 20,
) -> Paging:
    return Paging(page=page, size=size)


_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "Missing, invalid or expired token.",
    403: "Your role does not allow this.",
    404: "No such object in your organizations.",
    409: "Conflicts with the current state (duplicate, last admin, reused Idempotency-Key).",
    413: "The body is larger than the configured limit.",
    422: "A field is invalid; `errors` lists each field path and message.",
    429: "Rate limited or account locked; see Retry-After.",
    502: "The LLM provider failed; `detail` carries its message.",
    503: "The assistant has no model configured; `detail` says how to configure one.",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Document ``statuses`` as problem+json responses (429 is on every route)."""
    wanted = sorted({*statuses, 429})
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=f"{STATUS_CODES[status][0]}: {_DESCRIPTIONS.get(status, STATUS_CODES[status][1])}",
            media_type="application/problem+json",
            generate_examples=False,
        )
        for status in wanted
    }


READ = (401, 404, 422)
WRITE = (400, 401, 403, 404, 409, 413, 422)


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """Request bodies reject fields they do not know, so typos never pass silently."""


def changes_of(body: msgspec.Struct) -> dict[str, object]:
    """The fields a PATCH body actually sets."""
    return {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}


Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=256, description="8-256 characters")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]

AnyRequest = Request[Any, Any, Any]
