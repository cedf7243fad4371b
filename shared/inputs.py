"""Where a task's input image may come from: our own uploads, or a public http(s) URL."""

from __future__ import annotations

from .errors import BadRequest
from .storage import Storage
from .urlguard import UnsafeURL, check_url

UPLOADS_PREFIX = "uploads"


def upload_prefix(user_id: int) -> str:
    return f"{UPLOADS_PREFIX}/{user_id}/"


def own_key(url: str, storage: Storage) -> str | None:
    """The storage key when `url` is a link this service issued, else None."""
    return storage.key_from_url(url)


def upload_key_or_checked_url(url: str, storage: Storage, *, allow_private: bool) -> str | None:
    """An input's upload key when it is a link we issued (its owner is checked with the caller,
    `uploads.take`), else None once the remote URL passed `check_remote_url`."""
    key = own_key(url, storage)
    if key is None:
        check_remote_url(url, allow_private=allow_private)
    return key


def check_remote_url(url: str, *, allow_private: bool, field: str = "inputImageUrl") -> None:
    """Refuse obviously unsafe URLs at create time (no DNS here; the worker re-checks every hop)."""
    try:
        check_url(url, allow_private=allow_private)
    except UnsafeURL as exc:
        raise BadRequest("invalid parameters", details={"fields": {field: [str(exc)]}}) from exc


def check_upload_owner(key: str, user_id: int) -> None:
    """A link into our storage is only an input if it is the caller's own upload."""
    if not key.startswith(upload_prefix(user_id)):
        raise BadRequest(
            "invalid parameters",
            details={"fields": {"inputImageUrl": ["refers to a file you did not upload"]}},
        )
