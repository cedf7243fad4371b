"""API keys for shop backends: create (secret shown once), list, revoke. Login tokens only."""

from __future__ import annotations

from flask import Blueprint, jsonify

from shared import api_keys
from shared.db import db

from ..auth import current_user, require_login_token
from ..body import load_body
from ..schemas.auth import ApiKeyCreateSchema, ApiKeySchema

bp = Blueprint("keys", __name__, url_prefix="/api/keys")

create_schema = ApiKeyCreateSchema()
key_schema = ApiKeySchema()


@bp.post("")
def create():
    require_login_token()
    user = current_user()
    data = load_body(create_schema)
    key, secret = api_keys.create_key(user, data["name"])
    db.session.commit()
    return jsonify(success=True, data={**key_schema.dump(key), "key": secret}), 201


@bp.get("")
def index():
    require_login_token()
    keys = api_keys.live_keys(current_user().id)
    return jsonify(success=True, data={"items": key_schema.dump(keys, many=True)})


@bp.delete("/<int:key_id>")
def revoke(key_id: int):
    require_login_token()
    key = api_keys.revoke(current_user().id, key_id)
    db.session.commit()
    return jsonify(success=True, data=key_schema.dump(key))
