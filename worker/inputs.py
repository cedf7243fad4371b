"""Reading a task's input image: our own storage directly, anything else over guarded HTTP."""

from __future__ import annotations

from shared.app import settings, storage
from shared.config import Config
from shared.storage import ObjectNotFound

from .fetch import FetchError, fetch
from .imaging import ImageRejected, decode_image
from .runner import TaskRejected, TransientInputError


def fetch_configured(url: str, config: Config | None = None) -> bytes:
    """`fetch` with the configured size, time, redirect and address limits.

    Pass `config` when calling from a thread without the application context.
    """
    config = config or settings()
    return fetch(
        url,
        max_bytes=config.FETCH_MAX_BYTES,
        connect_timeout=config.FETCH_CONNECT_TIMEOUT,
        read_timeout=config.FETCH_READ_TIMEOUT,
        total_timeout=config.FETCH_TOTAL_TIMEOUT,
        max_redirects=config.FETCH_MAX_REDIRECTS,
        allow_private=config.ALLOW_PRIVATE_URLS,
    )


def load_input_bytes(url: str) -> bytes:
    store = storage()
    key = store.key_from_url(url)
    if key is not None:
        try:
            return store.get(key)
        except ObjectNotFound as exc:
            raise TaskRejected("uploaded image no longer exists; please upload it again") from exc
    try:
        return fetch_configured(url)
    except FetchError as exc:
        if exc.retryable:
            raise TransientInputError(exc.message) from exc
        raise TaskRejected(exc.message) from exc


def load_input_image(url: str):
    """The decoded input (RGB or RGBA), or TaskRejected with the rule that refused it."""
    config = settings()
    data = load_input_bytes(url)
    try:
        return decode_image(data, max_pixels=config.IMAGE_MAX_PIXELS, min_side=config.IMAGE_MIN_SIDE)
    except ImageRejected as exc:
        raise TaskRejected(str(exc)) from exc
