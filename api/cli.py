"""Operator commands: `flask --app wsgi users ...` and `flask --app wsgi quota audit`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from shared import quota, users
from shared.db import db
from shared.errors import Conflict

users_cli = AppGroup("users", help="Create accounts and grant membership or quota.")
quota_cli = AppGroup("quota", help="Check quota balances against the ledger.")


def _summary(user) -> str:
    until = user.member_until.isoformat() if user.member_until else "no expiry"
    member = f"member ({until})" if user.is_member else "not a member"
    return f"{user.email}: id={user.id} {member} quota={user.quota} admin={user.is_admin} active={user.is_active}"


@users_cli.command("create")
@click.argument("email")
@click.option("--password", required=True, help="Initial password.")
@click.option("--member", is_flag=True, help="Make the account a member (no expiry).")
@click.option("--quota", "quota_delta", type=int, default=0, help="Quota to grant.")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
def create_user(email: str, password: str, member: bool, quota_delta: int, admin: bool) -> None:
    """Create an account."""
    try:
        user = users.create_user(email, password, is_admin=admin)
    except Conflict as exc:
        raise click.ClickException(exc.message) from exc
    users.grant(user, member=True if member else None, quota_delta=quota_delta, note="created by operator")
    db.session.commit()
    click.echo(_summary(user))


@users_cli.command("grant")
@click.argument("email")
@click.option("--member/--no-member", default=None, help="Switch membership on or off.")
@click.option(
    "--quota", "quota_delta", type=int, default=0, help="Quota to add (negative takes away, never below 0)."
)
@click.option("--member-days", type=click.IntRange(min=1), default=None, help="Membership length in days.")
@click.option("--disable/--enable", "disable", default=None, help="Disable or re-enable the account.")
def grant(
    email: str, member: bool | None, quota_delta: int, member_days: int | None, disable: bool | None
) -> None:
    """Grant membership and/or quota (recorded in the ledger)."""
    user = users.find_by_email(email)
    if user is None:
        raise click.ClickException(f"no account with email {email}")
    users.grant(user, member=member, days=member_days, quota_delta=quota_delta, note="granted by operator")
    if disable is not None:
        user.is_active = not disable
    db.session.commit()
    db.session.refresh(user)
    click.echo(_summary(user))


@quota_cli.command("audit")
def audit() -> None:
    """Check every balance against the ledger and every refund against task outcomes."""
    problems = quota.audit()
    for problem in problems:
        click.echo(f"user={problem.user_id} task={problem.task_id}: {problem.problem}")
    if problems:
        click.echo(f"quota audit: {len(problems)} problem(s)")
        sys.exit(1)
    click.echo("quota audit: clean")


def register_cli(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(quota_cli)
