"""The caller's quota balance and recent ledger entries."""

from __future__ import annotations

from flask import Blueprint, jsonify

from shared import quota

from ..auth import current_user
from ..schemas.auth import LedgerEntrySchema

bp = Blueprint("quota", __name__, url_prefix="/api/quota")

entries_schema = LedgerEntrySchema(many=True)


@bp.get("")
def show():
    user = current_user()
    return jsonify(
        success=True,
        data={"quota": user.quota, "entries": entries_schema.dump(quota.recent_entries(user.id))},
    )
