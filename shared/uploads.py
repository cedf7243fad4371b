"""Uploaded photos: who stored what, the per-user storage cap, use by a task, and the cleanup of
uploads no task used. Nothing here commits.

The cap counts only uploads no task has used yet: an upload a task used was paid for with a
task unit, while an unused one is free storage, which is what the cap and the cleanup bound.
"""

from __future__ import annotations

import io
import logging
import secrets
import struct
import warnings
from dataclasses import dataclass
from datetime import timedelta

from PIL import Image, UnidentifiedImageError
from sqlalchemy import delete, func, select, update

from .db import db, utcnow
from .errors import BadRequest, Conflict, NotMember
from .imagetype import ACCEPTED_FORMATS, NOT_AN_IMAGE, TRUNCATED, sniff_image
from .inputs import check_upload_owner, upload_prefix
from .models import Upload, User
from .storage import Storage, StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    content_type: str


def check_member(user: User) -> None:
    """An upload is only good as a task's input, and only members create tasks."""
    if not user.membership_active(utcnow()):
        raise NotMember("membership required: only members can upload photos for tasks")


def store(storage: Storage, user_id: int, data: bytes, *, max_pixels: int, cap: int) -> Stored:
    """Check and store an upload and record it; the caller commits.

    The file is written before the row (a slow write holds no lock); if recording fails, the
    file is deleted again.
    """
    extension, content_type = check_image(data, max_pixels=max_pixels)
    check_room(user_id, len(data), cap)
    key = f"{upload_prefix(user_id)}{secrets.token_hex(12)}.{extension}"
    storage.put(key, data, content_type)
    try:
        record(key, user_id, len(data), cap)
    except Exception:
        storage.delete(key)
        raise
    return Stored(key, len(data), content_type)


def check_image(data: bytes, *, max_pixels: int) -> tuple[str, str]:
    """(extension, content type) of an upload that Pillow reads as an image, else BadRequest.

    The header is decoded and the pixel count bounded before `verify()` reads the rest of the
    file's structure (PNG chunks and their checksums, for example); no pixel data is decoded, so
    a web thread never holds a full-size image in memory.
    """
    kind = sniff_image(data)
    if kind is None:
        raise _refused(NOT_AN_IMAGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise _refused(
                        f"image is {width}×{height} pixels, above the {max_pixels / 1e6:g} MP limit"
                    )
                image.verify()
        except (UnidentifiedImageError, Image.DecompressionBombError):
            raise _refused(NOT_AN_IMAGE) from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error):
            raise _refused(TRUNCATED) from None
    return kind


def check_room(user_id: int, size: int, cap: int) -> None:
    """Refuse (409) an upload that would take the user's unused uploads over `cap` bytes."""
    used = unused_bytes(user_id)
    if used + size > cap:
        raise Conflict(
            f"upload storage full: {_mb(used)} of {_mb(cap)} held by uploads no task has used yet; "
            "create tasks with them or wait until they expire",
            details={"storageUsed": used, "storageCap": cap},
        )


def unused_bytes(user_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Upload.size), 0)).where(
                Upload.user_id == user_id, Upload.used_at.is_(None)
            )
        )
    )


def record(key: str, user_id: int, size: int, cap: int) -> None:
    """Record a stored upload; checked again under the user's row lock, so concurrent uploads
    cannot pass the cap together."""
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())
    check_room(user_id, size, cap)
    db.session.add(Upload(key=key, user_id=user_id, size=size))


def take(key: str, user_id: int) -> None:
    """A task's input is this upload: the caller's own (else 400/4001), now used (`mark_used`)."""
    check_upload_owner(key, user_id)
    mark_used(key)


def mark_used(key: str) -> None:
    """A task takes the upload as its input: it no longer counts against the cap or expires.

    Runs in the create's transaction, so a refused create leaves the upload unused.
    """
    db.session.execute(
        update(Upload).where(Upload.key == key, Upload.used_at.is_(None)).values(used_at=utcnow())
    )


def forget_unused(older_than_seconds: int, batch: int = 500) -> list[str]:
    """Delete the rows of uploads no task used within `older_than_seconds`; their keys.

    The caller commits, then deletes the files (`delete_files`): a create racing this finds the
    upload gone and its task fails with "upload it again", refunded.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    stale = (
        select(Upload.key)
        .where(Upload.used_at.is_(None), Upload.created_at < cutoff)
        .limit(batch)
        .scalar_subquery()
    )
    return list(db.session.scalars(delete(Upload).where(Upload.key.in_(stale)).returning(Upload.key)))


def delete_files(storage: Storage, keys: list[str]) -> None:
    """Delete the files of forgotten uploads; one that cannot be deleted is logged and left."""
    for key in keys:
        try:
            storage.delete(key)
        except StorageError:
            log.warning("could not delete expired upload %s", key, exc_info=True)


def _refused(reason: str) -> BadRequest:
    return BadRequest(reason, details={"fields": {"file": [reason]}})


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
