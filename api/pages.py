"""Serving the app's own HTML pages (console, API docs): no-cache entry page, security headers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def entry_page(directory: Path) -> Response:
    """The page's index.html, always revalidated so a deploy is picked up at once."""
    response = send_from_directory(directory, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


def secure_blueprint(
    bp: Blueprint, content_security_policy: str, extra: Mapping[str, str] | None = None
) -> None:
    """Add the Content-Security-Policy and the usual hardening headers to every answer of `bp`."""
    headers = {"Content-Security-Policy": content_security_policy, **BASE_HEADERS, **(extra or {})}

    @bp.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
