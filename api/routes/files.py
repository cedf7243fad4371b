"""Uploads of input photos, and the local-disk backend's signed file links."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, send_file

from shared import uploads
from shared.app import storage
from shared.db import db
from shared.errors import BadRequest, Forbidden
from shared.storage import LocalStorage, verify_signature

from ..auth import current_user

bp = Blueprint("files", __name__)

SERVED_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "zip": "application/zip",
}


@bp.post("/api/uploads")
def upload():
    """Store a member's photo; the returned URL is a valid `inputImageUrl`."""
    user = current_user()
    uploads.check_member(user)
    config = current_app.config
    stored = uploads.store(
        storage(),
        user.id,
        _file_bytes(config["FETCH_MAX_BYTES"]),
        max_pixels=config["IMAGE_MAX_PIXELS"],
        cap=config["UPLOAD_STORAGE_CAP_BYTES"],
    )
    db.session.commit()
    url = storage().url(stored.key, expires_in=config["STORAGE_URL_SECONDS"])
    return jsonify(
        success=True,
        data={"url": url, "key": stored.key, "size": stored.size, "contentType": stored.content_type},
    ), 201


def _file_bytes(limit: int) -> bytes:
    """The multipart field `file`, refused (413) past `limit` bytes without reading further."""
    file = request.files.get("file")
    if file is None:
        raise BadRequest("missing multipart field 'file'", details={"fields": {"file": ["required"]}})
    data = file.stream.read(limit + 1)
    if len(data) > limit:
        raise BadRequest(f"file is larger than the {limit // (1024 * 1024)} MB limit", status=413)
    return data


@bp.get("/files/<path:key>")
def serve(key: str):
    """Serve a local-disk object to whoever holds an unexpired signed link."""
    store = storage()
    if not isinstance(store, LocalStorage):
        abort(404)
    expires, sig = request.args.get("expires", ""), request.args.get("sig", "")
    if not verify_signature(current_app.config["STORAGE_SIGNING_SECRET"], key, expires, sig):
        raise Forbidden("file link is invalid or expired")
    content_type = SERVED_TYPES.get(key.rsplit(".", 1)[-1].lower())
    if content_type is None:
        abort(404)
    try:
        path = store.path(key)
    except ValueError:
        abort(404)
    response = send_file(path, mimetype=content_type, max_age=3600, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
