"""Schemas for accounts and tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from shared import api_keys
from shared.models import User

from .common import StringId, Timestamp

PASSWORD_RULE = "8-128 characters with at least one letter and one digit"


def check_password_rule(value: str) -> None:
    if not (8 <= len(value) <= 128 and re.search(r"[A-Za-z]", value) and re.search(r"\d", value)):
        raise ValidationError(f"password must be {PASSWORD_RULE}")


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=check_password_rule)


class PasswordChangeSchema(Schema):
    currentPassword = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))
    newPassword = fields.String(required=True, load_only=True, validate=check_password_rule)


class ApiKeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class ApiKeySchema(Schema):
    id = StringId()
    name = fields.String()
    prefix = fields.Function(api_keys.display_prefix)
    createdAt = Timestamp(attribute="created_at")
    lastUsedAt = Timestamp(attribute="last_used_at", allow_none=True)


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
