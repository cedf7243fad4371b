"""Tables: users, tasks, batches, the quota ledger, idempotency records, uploads, API keys and refresh tokens."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .db import db, utcnow

TASK_STATUSES = ("pending", "processing", "success", "failed")
ACTIVE_STATUSES = ("pending", "processing")
TERMINAL_STATUSES = ("success", "failed")

LEDGER_REASONS = ("grant", "deduct", "refund")
"""Why a quota change happened: an operator grant (either sign), a task's charge, a task's refund."""

BigId = BigInteger().with_variant(Integer, "sqlite")


def new_task_id() -> str:
    """Opaque, unguessable task id (also used as the RQ job id)."""
    return secrets.token_hex(16)


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("quota >= 0", name="quota_non_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Stored lower-cased: uniqueness is case-insensitive on every backend.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_member: Mapped[bool] = mapped_column(Boolean, default=False)
    member_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quota: Mapped[int] = mapped_column(Integer, default=0)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def membership_active(self, now: datetime) -> bool:
        if not self.is_member:
            return False
        return self.member_until is None or _aware(self.member_until) > now


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_created", "user_id", "created_at"),
        Index("ix_tasks_status_created", "status", "created_at"),
        Index("ix_tasks_type", "type"),
        Index("ix_tasks_batch", "batch_id", "batch_index"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_task_id)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    input_image_url: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What each stored result holds (shared.result_files.ResultFile records), when the worker knows it.
    result_files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error_message: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # The id of the task's render at an external service (RunningHub), stored right after submit.
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Where to POST the task when it ends (client webhooks, signed per Standard Webhooks).
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # The batch the task was created in (None for a single task), its place and the client's ref.
    batch_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("batches.id", ondelete="CASCADE"))
    batch_index: Mapped[int | None] = mapped_column(Integer)
    batch_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Batch(db.Model):
    """Many tasks of one type and params, charged together (all or nothing) and followed as one.

    `ended` counts the tasks that reached success or failed; the transition that brings it to
    `total` sets `completed_at` (one row-locked UPDATE, so exactly one task end completes it).
    """

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_task_id)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer)
    ended: Mapped[int] = mapped_column(Integer, default=0)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QuotaLedger(db.Model):
    """Every change of a user's quota. `(task_id, reason)` is unique: one charge and at most one
    refund per task, enforced by the database whatever the code does."""

    __tablename__ = "quota_ledger"
    __table_args__ = (
        UniqueConstraint("task_id", "reason", name="uq_quota_ledger_task_reason"),
        Index("ix_quota_ledger_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(db.Model):
    """One attempt to deliver a task's end (or a batch's completion) to the client's webhook URL."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_task", "task_id", "id"),
        Index("ix_webhook_deliveries_batch", "batch_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("tasks.id", ondelete="CASCADE"))
    batch_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("batches.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyRecord(db.Model):
    """The first response to a create made with an `Idempotency-Key`, replayed on repeats."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Upload(db.Model):
    """A photo stored by `POST /api/uploads`: counted against its owner's storage cap until a task
    uses it (`used_at`), and deleted with its file if no task does within `UPLOAD_UNUSED_SECONDS`."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_unused", "user_id", "created_at", postgresql_where="used_at IS NULL"),
    )

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(db.Model):
    """A long-lived key a shop backend authenticates with instead of a person's password.

    Only a hash of the secret part is stored; `lookup` is the public part that finds the row.
    """

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefreshToken(db.Model):
    """One issued refresh token. Tokens of one login share a `family`; each is good for one use."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_user", "user_id", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored timestamp is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
