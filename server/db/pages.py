"""Offset pagination shared by every list service."""

from __future__ import annotations

from typing import TypeVar

from piccolo.query import Objects, Select

Q = TypeVar("Q", Select, Objects)  # type: ignore[type-arg]


def page_of(query: Q, page: int, size: int) -> Q:
    """Limit ``query`` to one page (1-based)."""
    return query.offset((page - 1) * size).limit(size)
