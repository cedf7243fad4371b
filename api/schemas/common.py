"""Fields shared by the resource schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import fields


class Timestamp(fields.DateTime):
    """ISO 8601 in UTC with a `Z` suffix (SQLite returns naive datetimes; they are UTC)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StringId(fields.Field):
    """Database ids go out as strings (SPEC: ids are strings)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)
