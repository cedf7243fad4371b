"""The seller's web console: one static page at `/` and its assets, served by the web dyno.

Everything the page needs comes from this app (no CDN), and the Content-Security-Policy
forbids inline scripts, so user-supplied text can only ever reach the page as text.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from .pages import entry_page, secure_blueprint

STATIC_DIR = Path(__file__).resolve().parent / "static" / "console"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data: blob: http: https:",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Result images may live on object storage (http/https); scripts, styles and API calls stay on this origin."""

bp = Blueprint(
    "console",
    __name__,
    static_folder=str(STATIC_DIR),
    static_url_path="/console/static",
)


secure_blueprint(bp, CONTENT_SECURITY_POLICY)


@bp.get("/")
def index() -> Response:
    return entry_page(STATIC_DIR)
