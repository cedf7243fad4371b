"""Heavy per-process resources (the matting model), created once after the process starts."""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


def preload(queue_names: Iterable[str]) -> None:
    """Load what the served queues' jobs need before the first job arrives."""
    return None
