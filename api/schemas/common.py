"""Fields shared by the resource schemas (defined in `shared.schemas`, used by both processes)."""

from shared.schemas import StringId, Timestamp

__all__ = ["StringId", "Timestamp"]
