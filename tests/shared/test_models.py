"""Migrations and database-level guarantees."""

from __future__ import annotations

import psycopg
import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from api import create_app
from shared.db import db
from shared.models import QuotaLedger
from tests.conftest import PG_URL, ConfigForTests


def test_quota_check_constraint_rejects_negative_balance(app, make_user):
    user = make_user(quota=1)
    with pytest.raises(IntegrityError, match="quota_non_negative"):
        db.session.execute(text("UPDATE users SET quota = -1 WHERE id = :id"), {"id": user.id})
        db.session.flush()
    db.session.rollback()


def test_refund_recorded_at_most_once_per_task(app, make_user):
    user = make_user(quota=1)
    for _ in range(2):
        db.session.add(QuotaLedger(user_id=user.id, amount=1, balance_after=2, reason="refund", task_id="t1"))
    with pytest.raises(IntegrityError, match="uq_quota_ledger_task_reason"):
        db.session.flush()
    db.session.rollback()


@pytest.fixture
def scratch_database():
    name = "shopimage_migrations_test"
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_URL}/{name}"
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migrations_upgrade_from_empty_and_downgrade(backend, scratch_database, tmp_path, redis):
    url = scratch_database if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    app = create_app(ConfigForTests(DATABASE_URL=url))
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "tasks", "quota_ledger", "idempotency_keys", "alembic_version"} <= tables
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("tasks")}
        assert {"ix_tasks_user_created", "ix_tasks_status_created", "ix_tasks_type"} <= indexes
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        db.session.remove()
        db.engine.dispose()
