"""Flask extensions, created bare and bound in `create_app`."""

from __future__ import annotations

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate

from .ratelimit import rate_limiter

jwt = JWTManager()
migrate = Migrate(directory="migrations", compare_type=True, render_as_batch=True)

__all__ = ["jwt", "migrate", "rate_limiter"]
