"""Schemas for accounts and tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from shared.models import User

from .common import StringId, Timestamp

PASSWORD_RULE = "8-128 characters with at least one letter and one digit"


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True)

    @validates("password")
    def check_password(self, value: str, **_: Any) -> None:
        if not (8 <= len(value) <= 128 and re.search(r"[A-Za-z]", value) and re.search(r"\d", value)):
            raise ValidationError(f"password must be {PASSWORD_RULE}")


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class UserSchema(Schema):
    id = StringId()
    email = fields.String()
    isMember = fields.Boolean(attribute="is_member")
    memberUntil = Timestamp(attribute="member_until", allow_none=True)
    membershipActive = fields.Function(lambda user: user.membership_active(datetime.now(UTC)))
    quota = fields.Integer()
    isAdmin = fields.Boolean(attribute="is_admin")
    createdAt = Timestamp(attribute="created_at")


class LedgerEntrySchema(Schema):
    id = StringId()
    amount = fields.Integer()
    balanceAfter = fields.Integer(attribute="balance_after")
    reason = fields.String()
    taskId = fields.String(attribute="task_id", allow_none=True)
    note = fields.String(allow_none=True)
    createdAt = Timestamp(attribute="created_at")


def dump_user(user: User) -> dict[str, Any]:
    return user_schema.dump(user)


user_schema = UserSchema()
